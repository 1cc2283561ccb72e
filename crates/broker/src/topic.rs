//! A topic: its name, settings and partitions, and how one is created or
//! opened on disk (`topics/<name>/topic.json` + one log directory per
//! partition) or in memory. Creation writes `topic.json` first, then opens
//! the partition logs (which create their directories), so a crash in
//! between is completed at the next open. Which topics exist, auto-creation
//! and deletion are the facade's.

use std::path::{Path, PathBuf};

use citystream_log::{LogConfig, PartitionLog};

use crate::data_dir::{
    TOPIC_METADATA_FILE, TopicMetadata, create_dir_durably, read_json, write_json,
};
use crate::names::is_internal_topic;
use crate::partition::{Partition, PartitionShared};
use crate::{BrokerError, TopicSettings};

/// Most partitions one topic may have.
pub const PARTITIONS_PER_TOPIC_MAX: u32 = 10_000;
pub use crate::topic_settings::SEGMENT_BYTES_MIN;

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

#[derive(Debug)]
pub struct Topic {
    name: String,
    settings: TopicSettings,
    partitions: Vec<Partition>,
    /// `topics/<name>`; `None` in memory.
    dir: Option<PathBuf>,
}

impl Topic {
    /// Creates a new topic under `topics_dir` (or in memory when `None`).
    pub fn create(
        name: &str,
        partitions: u32,
        settings: TopicSettings,
        base: &LogConfig,
        topics_dir: Option<&Path>,
        shared: &PartitionShared,
    ) -> Result<Topic, BrokerError> {
        validate_topic_shape(partitions, &settings)?;
        let dir = topics_dir.map(|d| d.join(name));
        if let Some(dir) = &dir {
            create_dir_durably(dir)?;
            write_json(
                &dir.join(TOPIC_METADATA_FILE),
                &TopicMetadata::new(partitions, &settings),
            )?;
        }
        Topic::open_partitions(name, partitions, settings, base, dir, 0, shared)
    }

    /// Opens an existing topic directory; `Ok(None)` if it has no
    /// `topic.json` (a creation that crashed before writing it).
    pub fn open(
        dir: &Path,
        base: &LogConfig,
        now_ms: i64,
        shared: &PartitionShared,
    ) -> Result<Option<Topic>, BrokerError> {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| corrupt(dir, "topic directory name is not UTF-8"))?;
        let Some(meta) = read_json::<TopicMetadata>(&dir.join(TOPIC_METADATA_FILE))? else {
            return Ok(None);
        };
        if !TopicMetadata::VERSIONS_READ.contains(&meta.version) {
            return Err(corrupt(dir, "unsupported topic.json version"));
        }
        let settings = meta.settings();
        validate_topic_shape(meta.partitions, &settings)?;
        let dir = Some(dir.to_owned());
        Topic::open_partitions(name, meta.partitions, settings, base, dir, now_ms, shared).map(Some)
    }

    fn open_partitions(
        name: &str,
        count: u32,
        settings: TopicSettings,
        base: &LogConfig,
        dir: Option<PathBuf>,
        now_ms: i64,
        shared: &PartitionShared,
    ) -> Result<Topic, BrokerError> {
        let config = log_config(name, &settings, base);
        let mut partitions = Vec::with_capacity(count as usize);
        for index in 0..count {
            let log = match &dir {
                Some(dir) => PartitionLog::open(dir.join(index.to_string()), config.clone())?,
                None => PartitionLog::in_memory(config.clone()),
            };
            partitions.push(Partition::new(name, index, log, now_ms, shared.clone())?);
        }
        Ok(Topic {
            name: name.to_owned(),
            settings,
            partitions,
            dir,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn settings(&self) -> &TopicSettings {
        &self.settings
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    pub fn partition_count(&self) -> u32 {
        self.partitions.len() as u32
    }

    pub fn partitions(&self) -> &[Partition] {
        &self.partitions
    }

    pub fn partition(&self, partition: u32) -> Result<&Partition, BrokerError> {
        self.partitions
            .get(partition as usize)
            .ok_or_else(|| BrokerError::UnknownPartition {
                topic: self.name.clone(),
                partition,
                partitions: self.partition_count(),
            })
    }

    pub fn info(&self) -> TopicInfo {
        let partitions = self
            .partitions
            .iter()
            .map(|p| {
                let (log_start_offset, size_bytes) = p.log_extent();
                PartitionInfo {
                    partition: p.index(),
                    log_start_offset,
                    high_watermark: p.high_watermark(),
                    size_bytes,
                }
            })
            .collect();
        TopicInfo {
            name: self.name.clone(),
            settings: self.settings.clone(),
            partitions,
        }
    }
}

/// The log config of a topic's partitions: the broker default with the
/// topic's overrides. Internal topics never lose data to retention (the
/// committed offsets must all be replayable), and neither do topics that
/// are only compacted (compaction, not age, removes their records).
pub fn log_config(name: &str, settings: &TopicSettings, base: &LogConfig) -> LogConfig {
    let mut config = base.clone();
    config.compacted = settings.cleanup.compacts();
    config.compaction_lag_ms = settings.compaction_lag_ms_or_default();
    config.tombstone_retention_ms = settings.tombstone_retention_ms_or_default();
    if let Some(roll_ms) = settings.segment_roll_ms_or_default() {
        config.segment_roll_ms = Some(roll_ms);
    }
    if let Some(segment_bytes) = settings.segment_bytes {
        config.segment_bytes_max = segment_bytes;
    }
    if settings.retention_ms.is_some() {
        config.retention_ms = settings.retention_ms;
    }
    if settings.retention_bytes.is_some() {
        config.retention_bytes = settings.retention_bytes;
    }
    if is_internal_topic(name) || !settings.cleanup.deletes() {
        config.retention_ms = None;
        config.retention_bytes = None;
    }
    config
}

/// Partition count and settings within their documented bounds.
pub fn validate_topic_shape(partitions: u32, settings: &TopicSettings) -> Result<(), BrokerError> {
    if partitions == 0 || partitions > PARTITIONS_PER_TOPIC_MAX {
        return Err(BrokerError::InvalidRequest(format!(
            "a topic has 1-{PARTITIONS_PER_TOPIC_MAX} partitions, not {partitions}"
        )));
    }
    settings.validate()
}

fn corrupt(dir: &Path, reason: &str) -> BrokerError {
    BrokerError::Storage(citystream_log::LogError::Corrupt(format!(
        "{}: {reason}",
        dir.display()
    )))
}
