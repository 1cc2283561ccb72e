//! The broker domain: the one facade every transport (native TCP, HTTP/SSE,
//! MQTT) calls. It owns topics and their partition logs, the produce and
//! fetch rules (validation, limits, idempotent-producer dedup), offset
//! lookups, and consumer groups with durable committed offsets.
//!
//! It owns no sockets, tasks or clocks: time comes in as `now_ms`, and the
//! server drives [`Broker::tick`] (session expiry, rebalance deadlines,
//! retention) and [`Broker::sync_logs`] (interval fsync). Long-poll fetches
//! and blocking group joins use `tokio::sync` channels, which do no I/O.

// API CONTRACT (implemented by the broker work; signatures fixed, bodies not).

use std::path::PathBuf;

use bytes::Bytes;
pub use citystream_log::{FsyncPolicy, LogConfig};

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_id: u32,
    /// `None`: everything in memory (`--in-memory`).
    pub data_dir: Option<PathBuf>,
    /// Defaults for every partition log (topics may override retention).
    pub log: LogConfig,
    pub auto_create_topics: bool,
    /// Partitions of an auto-created topic.
    pub default_partitions: u32,
    /// Largest produced batch accepted (bytes, header included).
    pub batch_bytes_max: u32,
    /// Largest single record value + key accepted (bytes).
    pub record_bytes_max: u32,
    pub group_session_timeout_ms_min: u32,
    pub group_session_timeout_ms_max: u32,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_id: 1,
            data_dir: None,
            log: LogConfig::default(),
            auto_create_topics: true,
            default_partitions: 1,
            batch_bytes_max: 8 * 1024 * 1024,
            record_bytes_max: 1024 * 1024,
            group_session_timeout_ms_min: 1_000,
            group_session_timeout_ms_max: 300_000,
        }
    }
}

/// Per-topic settings given at creation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicSettings {
    pub retention_ms: Option<u64>,
    pub retention_bytes: Option<u64>,
    pub segment_bytes: Option<u64>,
}

/// Domain errors; the server maps each to a wire error code.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("invalid topic name {name:?}: {rule}")]
    InvalidTopicName { name: String, rule: &'static str },
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
    #[error("topic {topic:?} has no partition {partition} (it has {partitions})")]
    UnknownPartition {
        topic: String,
        partition: u32,
        partitions: u32,
    },
    #[error("topic {0:?} already exists")]
    TopicExists(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("batch of {size} bytes exceeds the limit of {limit} bytes")]
    BatchTooLarge { size: usize, limit: u32 },
    #[error("record {index} of {size} bytes exceeds the record limit of {limit} bytes")]
    RecordTooLarge { index: u32, size: usize, limit: u32 },
    #[error("corrupt batch: {0}")]
    CorruptBatch(#[from] citystream_record::BatchError),
    #[error("offset {requested} is out of range [{start}, {end}]")]
    OffsetOutOfRange {
        requested: u64,
        start: u64,
        end: u64,
    },
    #[error(
        "producer {producer_id} sent sequence {received} on {topic}/{partition}, expected {expected}"
    )]
    OutOfOrderSequence {
        producer_id: u64,
        topic: String,
        partition: u32,
        expected: u32,
        received: u32,
    },
    #[error("unknown producer id {0}")]
    UnknownProducer(u64),
    #[error("unknown group {0:?}")]
    UnknownGroup(String),
    #[error("unknown member {member_id:?} in group {group:?}")]
    UnknownMember { group: String, member_id: String },
    #[error("generation {received} of group {group:?} is stale (current {current})")]
    IllegalGeneration {
        group: String,
        received: u32,
        current: u32,
    },
    #[error("group {0:?} is rebalancing; re-join")]
    RebalanceInProgress(String),
    #[error("storage error: {0}")]
    Storage(#[from] citystream_log::LogError),
}

/// Where a partition offset lookup points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetQuery {
    Earliest,
    Latest,
    Timestamp(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub settings: TopicSettings,
    pub partitions: Vec<PartitionInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub partition: u32,
    pub log_start_offset: u64,
    pub high_watermark: u64,
    pub size_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceOutcome {
    pub base_offset: u64,
    pub log_start_offset: u64,
    /// True when an idempotent producer's batch was a retry already written.
    pub duplicate: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOutcome {
    /// Whole batches, the first containing the requested offset.
    pub records: Bytes,
    pub high_watermark: u64,
    pub log_start_offset: u64,
}

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

pub struct Broker {
    _private: (),
}

impl Broker {
    /// Opens the broker: loads every topic under `data_dir`, recovers logs,
    /// rebuilds idempotent-producer state and committed group offsets.
    pub fn open(config: BrokerConfig, now_ms: i64) -> Result<Broker, BrokerError> {
        let _ = (config, now_ms);
        todo!()
    }

    pub fn config(&self) -> &BrokerConfig {
        todo!()
    }

    // ---- topics ----

    pub fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        settings: TopicSettings,
    ) -> Result<TopicInfo, BrokerError> {
        let _ = (name, partitions, settings);
        todo!()
    }

    pub fn delete_topic(&self, name: &str) -> Result<(), BrokerError> {
        let _ = name;
        todo!()
    }

    /// Every user topic, sorted by name (internal `__` topics excluded).
    pub fn list_topics(&self) -> Vec<TopicInfo> {
        todo!()
    }

    pub fn describe_topic(&self, name: &str) -> Result<TopicInfo, BrokerError> {
        let _ = name;
        todo!()
    }

    // ---- data path ----

    /// Validates and appends one encoded batch (auto-creating the topic if
    /// allowed); dedups idempotent producers' retries.
    pub fn produce(
        &self,
        topic: &str,
        partition: u32,
        batch: Bytes,
        now_ms: i64,
    ) -> Result<ProduceOutcome, BrokerError> {
        let _ = (topic, partition, batch, now_ms);
        todo!()
    }

    /// Reads whole batches from `offset` up to `max_bytes` (at least one
    /// batch). `offset == high_watermark` returns empty records.
    pub fn fetch(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: u32,
    ) -> Result<FetchOutcome, BrokerError> {
        let _ = (topic, partition, offset, max_bytes);
        todo!()
    }

    /// Watches a partition's high watermark, for long-poll fetches.
    pub fn watch_partition(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<tokio::sync::watch::Receiver<u64>, BrokerError> {
        let _ = (topic, partition);
        todo!()
    }

    pub fn list_offset(
        &self,
        topic: &str,
        partition: u32,
        query: OffsetQuery,
    ) -> Result<u64, BrokerError> {
        let _ = (topic, partition, query);
        todo!()
    }

    /// A fresh producer id for an idempotent producer (never 0).
    pub fn init_producer(&self) -> Result<u64, BrokerError> {
        todo!()
    }

    // ---- consumer groups ----

    /// Joins or re-joins; the ticket resolves when the rebalance completes.
    pub fn join_group(&self, request: JoinRequest, now_ms: i64) -> Result<JoinTicket, BrokerError> {
        let _ = (request, now_ms);
        todo!()
    }

    pub fn sync_group(
        &self,
        group: &str,
        member_id: &str,
        generation: u32,
    ) -> Result<Vec<GroupPartition>, BrokerError> {
        let _ = (group, member_id, generation);
        todo!()
    }

    pub fn heartbeat(
        &self,
        group: &str,
        member_id: &str,
        generation: u32,
        now_ms: i64,
    ) -> Result<(), BrokerError> {
        let _ = (group, member_id, generation, now_ms);
        todo!()
    }

    pub fn leave_group(
        &self,
        group: &str,
        member_id: &str,
        now_ms: i64,
    ) -> Result<(), BrokerError> {
        let _ = (group, member_id, now_ms);
        todo!()
    }

    /// Commits offsets; `member_id` empty + `generation` 0 = manual commit.
    pub fn commit_offsets(
        &self,
        group: &str,
        member_id: &str,
        generation: u32,
        offsets: &[(GroupPartition, u64, String)],
    ) -> Result<Vec<Result<(), BrokerError>>, BrokerError> {
        let _ = (group, member_id, generation, offsets);
        todo!()
    }

    /// Committed offsets (`None`: nothing committed); empty `partitions` = all.
    pub fn fetch_offsets(
        &self,
        group: &str,
        partitions: &[GroupPartition],
    ) -> Vec<(GroupPartition, Option<u64>, String)> {
        let _ = (group, partitions);
        todo!()
    }

    pub fn list_groups(&self) -> Vec<GroupOverview> {
        todo!()
    }

    pub fn describe_group(&self, group: &str) -> Result<GroupOverview, BrokerError> {
        let _ = group;
        todo!()
    }

    // ---- housekeeping driven by the server ----

    /// Expires silent members, completes overdue rebalances, applies retention.
    pub fn tick(&self, now_ms: i64) {
        let _ = now_ms;
        todo!()
    }

    /// fsyncs every partition with unsynced writes (interval policy).
    pub fn sync_logs(&self) -> Result<(), BrokerError> {
        todo!()
    }

    /// Flushes and fsyncs everything; called on clean shutdown.
    pub fn close(&self) -> Result<(), BrokerError> {
        todo!()
    }
}
