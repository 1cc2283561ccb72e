//! Broker configuration and its validation at start. Per-topic settings
//! are `topic_settings.rs`; parsing from files, flags and environment
//! belongs to the server.

use std::path::PathBuf;

pub use citystream_log::{FsyncPolicy, LogConfig};

use crate::BrokerError;

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
    /// How often retention looks for segments to delete (Kafka's
    /// `log.retention.check.interval.ms`).
    pub retention_check_interval_ms: u64,
    /// Memory of the compaction key map, per node (decision 0017 §6).
    pub compaction_buffer_bytes: u64,
    /// A log is compacted once at least this share of it is dirty
    /// (written since its last pass).
    pub compaction_dirty_ratio_min_percent: u8,
    /// Compaction never touches batches younger than this, whatever a
    /// topic's `compaction_lag_ms`, so idempotent retries stay exact
    /// (decision 0017 §8).
    pub compaction_lag_floor_ms: u64,
}

/// Smallest `compaction_buffer_bytes`: one batch of minimal records must
/// fit in the key map, so every pass makes progress.
pub const COMPACTION_BUFFER_BYTES_MIN: u64 = 16 * 1024 * 1024;

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
            retention_check_interval_ms: 10_000,
            compaction_buffer_bytes: 32 * 1024 * 1024,
            compaction_dirty_ratio_min_percent: 50,
            compaction_lag_floor_ms: 300_000,
        }
    }
}

impl BrokerConfig {
    /// Checks every value against its documented bounds, with a message
    /// that names the setting.
    pub fn validate(&self) -> Result<(), BrokerError> {
        let invalid = |message: String| Err(BrokerError::InvalidRequest(message));
        let max = crate::topic::PARTITIONS_PER_TOPIC_MAX;
        if self.default_partitions == 0 || self.default_partitions > max {
            return invalid(format!("default_partitions must be 1-{max}"));
        }
        let header_len = citystream_record::BATCH_HEADER_LEN;
        if (self.batch_bytes_max as usize) <= header_len {
            return invalid(format!(
                "batch_bytes_max must exceed the {header_len}-byte batch header"
            ));
        }
        if self.record_bytes_max == 0 {
            return invalid("record_bytes_max must be at least 1".to_owned());
        }
        if self.group_session_timeout_ms_min == 0
            || self.group_session_timeout_ms_min > self.group_session_timeout_ms_max
        {
            return invalid(
                "group session timeouts need 0 < group_session_timeout_ms_min <= group_session_timeout_ms_max"
                    .to_owned(),
            );
        }
        if self.retention_check_interval_ms == 0 {
            return invalid("retention_check_interval_ms must be at least 1".to_owned());
        }
        if self.log.segment_bytes_max < crate::topic::SEGMENT_BYTES_MIN {
            return invalid(format!(
                "log.segment_bytes_max must be at least {}",
                crate::topic::SEGMENT_BYTES_MIN
            ));
        }
        self.validate_compaction()
    }

    /// The compaction settings of decision 0017 §9 (the cleaner that uses
    /// them is not built yet; they are checked at start all the same).
    fn validate_compaction(&self) -> Result<(), BrokerError> {
        let invalid = |message: String| Err(BrokerError::InvalidRequest(message));
        if self.compaction_buffer_bytes < COMPACTION_BUFFER_BYTES_MIN {
            return invalid(format!(
                "compaction_buffer_bytes must be at least {COMPACTION_BUFFER_BYTES_MIN} (16 MiB)"
            ));
        }
        if !(1..=100).contains(&self.compaction_dirty_ratio_min_percent) {
            return invalid("compaction_dirty_ratio_min_percent must be 1-100".to_owned());
        }
        Ok(())
    }
}
