//! The [`Broker`] facade: its state, opening (loading topics, the offsets
//! store and producer ids) and the housekeeping the server drives (`tick`,
//! `sync_logs`, `close`). The requests are grouped one file per resource:
//! `topics.rs` (admin), `data.rs` (produce, fetch, offsets lookups),
//! `groups.rs` (membership and committed offsets).
//!
//! Locks, always taken in this order and never the other way: the admin
//! mutex (create/delete), the topic map, the group coordinator, the offsets
//! store, one partition, the hybrid clock. The topic map lock is only held for lookups and
//! inserts, never across a partition's I/O on the produce/fetch path.

mod data;
mod groups;
mod topics;

pub use groups::CheckedCommit;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use parking_lot::{Mutex, RwLock};

use crate::data_dir::{
    DELETING_DIR, PRODUCER_IDS_FILE, TOPICS_DIR, clear_tombstones, create_dir_durably, list_dir,
    remove_via_tombstone,
};
use crate::group::GroupCoordinator;
use crate::names::{is_internal_topic, validate_topic_name};
use crate::offsets::{OFFSETS_TOPIC, OffsetStore};
use crate::partition::PartitionShared;
use crate::produce::ProduceLimits;
use crate::producer_ids::ProducerIds;
use crate::topic::Topic;
use crate::{BrokerConfig, BrokerError, FsyncPolicy, TopicSettings};
use citystream_record::HybridClock;

type TopicMap = HashMap<String, Arc<Topic>>;

/// Partition counts of the topics consumer groups may use, when they live
/// outside this broker (cluster mode: in the metadata group); 0 for a
/// topic that does not exist.
pub type TopicCatalog = Arc<dyn Fn(&str) -> u32 + Send + Sync>;

pub struct Broker {
    config: BrokerConfig,
    topics: RwLock<TopicMap>,
    /// Serializes topic creation and deletion.
    admin: Mutex<()>,
    groups: Mutex<GroupCoordinator>,
    offsets: OffsetStore,
    producer_ids: ProducerIds,
    /// `now_ms` of the last retention pass.
    last_retention_ms: Mutex<Option<i64>>,
    /// Latest `now_ms` seen, for records written by calls that get no clock.
    last_now_ms: AtomicI64,
    /// Shared by every partition: the unsynced-write notifier and the
    /// broker's hybrid logical clock.
    shared: PartitionShared,
    /// Where groups look topics up instead of `topics` (cluster mode).
    catalog: std::sync::OnceLock<TopicCatalog>,
}

impl Broker {
    /// Opens the broker: loads every topic under `data_dir`, recovers logs,
    /// rebuilds idempotent-producer state and committed group offsets.
    pub fn open(config: BrokerConfig, now_ms: i64) -> Result<Broker, BrokerError> {
        config.validate()?;
        let shared = PartitionShared::default();
        let mut topics = match &config.data_dir {
            Some(data_dir) => load_topics(data_dir, &config, now_ms, &shared)?,
            None => TopicMap::new(),
        };
        let offsets_topic = match topics.get(OFFSETS_TOPIC) {
            Some(topic) => topic.clone(),
            None => {
                let topics_dir = config.data_dir.as_ref().map(|d| d.join(TOPICS_DIR));
                let settings = TopicSettings::default();
                let topic = Topic::create(
                    OFFSETS_TOPIC,
                    1,
                    settings,
                    &config.log,
                    topics_dir.as_deref(),
                    &shared,
                )?;
                let topic = Arc::new(topic);
                topics.insert(OFFSETS_TOPIC.to_owned(), topic.clone());
                topic
            }
        };
        let offsets = OffsetStore::open(offsets_topic)?;
        let ids_path = config.data_dir.as_ref().map(|d| d.join(PRODUCER_IDS_FILE));
        let producer_ids = ProducerIds::open(config.node_id, ids_path)?;
        let groups = GroupCoordinator::new(
            config.group_session_timeout_ms_min,
            config.group_session_timeout_ms_max,
            now_ms as u64,
        );
        tracing::info!(
            node = config.node_id,
            topics = topics.len() - 1,
            "broker opened"
        );
        Ok(Broker {
            config,
            topics: RwLock::new(topics),
            admin: Mutex::new(()),
            groups: Mutex::new(groups),
            offsets,
            producer_ids,
            last_retention_ms: Mutex::new(None),
            last_now_ms: AtomicI64::new(now_ms),
            shared,
            catalog: std::sync::OnceLock::new(),
        })
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// The broker's hybrid logical clock, for records a replicated
    /// partition stamps outside this facade (one clock per node).
    pub fn clock(&self) -> Arc<Mutex<HybridClock>> {
        Arc::clone(&self.shared.clock)
    }

    /// The limits every produced batch is validated against.
    pub fn produce_limits(&self) -> ProduceLimits {
        ProduceLimits {
            batch_bytes_max: self.config.batch_bytes_max,
            record_bytes_max: self.config.record_bytes_max,
        }
    }

    /// False for a producer id this node would have allocated but has not.
    pub fn producer_id_is_plausible(&self, producer_id: u64) -> bool {
        self.producer_ids.is_plausible(producer_id)
    }

    // ---- housekeeping driven by the server ----

    /// Expires silent members, completes overdue rebalances, applies retention.
    pub fn tick(&self, now_ms: i64) {
        self.observe_time(now_ms);
        {
            let topics = self.topics.read();
            let counts = self.partition_counter(&topics);
            self.groups.lock().tick(now_ms, &counts);
        }
        if self.retention_due(now_ms) {
            for topic in self.topic_snapshot() {
                for partition in topic.partitions() {
                    if let Err(error) = partition.apply_retention(now_ms) {
                        tracing::warn!(topic = topic.name(), partition = partition.index(), %error, "retention failed");
                    }
                }
            }
        }
    }

    /// One compaction pass over each partition of a compacted topic that
    /// has closed segments past its lag to compact (single broker; a
    /// cluster node compacts each replica through Raft instead). Slow:
    /// run it off the request path, every `retention_check_interval_ms`.
    pub fn compact(&self, now_ms: i64) {
        let key_map_bytes =
            usize::try_from(self.config.compaction_buffer_bytes).unwrap_or(usize::MAX);
        let lag_floor_ms = self.config.compaction_lag_floor_ms;
        let dirty_ratio = self.config.compaction_dirty_ratio_min_percent;
        for topic in self.topic_snapshot() {
            for partition in topic.partitions() {
                match partition.compact(now_ms, key_map_bytes, dirty_ratio, lag_floor_ms) {
                    Ok(Some(summary)) => tracing::debug!(
                        topic = topic.name(),
                        partition = partition.index(),
                        horizon = summary.horizon.0,
                        rewritten = summary.segments_rewritten,
                        bytes_removed = summary.bytes_removed,
                        "compaction pass"
                    ),
                    Ok(None) => {}
                    Err(error) => tracing::warn!(
                        topic = topic.name(),
                        partition = partition.index(),
                        %error,
                        "compaction failed"
                    ),
                }
            }
        }
    }

    /// fsyncs every partition with unsynced writes (interval policy; under
    /// `Always` appends are already synced, under `Never` nothing is).
    pub fn sync_logs(&self) -> Result<(), BrokerError> {
        match self.config.log.fsync {
            FsyncPolicy::Interval { .. } => self.sync_dirty(),
            FsyncPolicy::Always | FsyncPolicy::Never => Ok(()),
        }
    }

    /// Resolves once some partition has writes that are not yet synced
    /// (immediately if that happened since the last call). The interval
    /// fsync timer waits on this so an idle broker does no work.
    pub async fn unsynced_writes(&self) {
        self.shared.unsynced.notified().await;
    }

    /// Flushes and fsyncs everything; called on clean shutdown.
    pub fn close(&self) -> Result<(), BrokerError> {
        self.sync_dirty()?;
        tracing::info!(node = self.config.node_id, "broker closed");
        Ok(())
    }

    /// Syncs every dirty partition; reports the first error after trying all.
    fn sync_dirty(&self) -> Result<(), BrokerError> {
        let mut first_error = None;
        for topic in self.topic_snapshot() {
            for partition in topic.partitions() {
                if let Err(error) = partition.sync_if_dirty() {
                    tracing::warn!(topic = topic.name(), partition = partition.index(), %error, "fsync failed");
                    first_error.get_or_insert(error);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn retention_due(&self, now_ms: i64) -> bool {
        let mut last = self.last_retention_ms.lock();
        let interval = i64::try_from(self.config.retention_check_interval_ms).unwrap_or(i64::MAX);
        if last.is_some_and(|last| now_ms.saturating_sub(last) < interval) {
            return false;
        }
        *last = Some(now_ms);
        true
    }

    /// The topic named `name` (internal ones included).
    fn topic(&self, name: &str) -> Result<Arc<Topic>, BrokerError> {
        self.topics
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| BrokerError::UnknownTopic(name.to_owned()))
    }

    /// Every topic, for work done without holding the map lock.
    fn topic_snapshot(&self) -> Vec<Arc<Topic>> {
        self.topics.read().values().cloned().collect()
    }

    fn topics_dir(&self) -> Option<PathBuf> {
        self.config.data_dir.as_ref().map(|d| d.join(TOPICS_DIR))
    }

    fn deleting_dir(&self) -> Option<PathBuf> {
        self.config.data_dir.as_ref().map(|d| d.join(DELETING_DIR))
    }

    fn observe_time(&self, now_ms: i64) {
        self.last_now_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    fn now_ms(&self) -> i64 {
        self.last_now_ms.load(Ordering::Relaxed)
    }
}

/// Partition counts of user topics, as the group coordinator sees them.
impl Broker {
    /// Makes consumer groups (assignments, commits) see the topics of
    /// `catalog` instead of this broker's own: cluster mode, where topics
    /// are replicated outside this facade. Set once, at start.
    pub fn set_topic_catalog(&self, catalog: TopicCatalog) {
        let _ = self.catalog.set(catalog);
    }

    /// Partition count by topic name for group logic: 0 for unknown and
    /// internal topics.
    fn partition_counter<'a>(&'a self, topics: &'a TopicMap) -> impl Fn(&str) -> u32 + 'a {
        move |name: &str| {
            if is_internal_topic(name) {
                return 0;
            }
            match self.catalog.get() {
                Some(catalog) => catalog(name),
                None => topics.get(name).map_or(0, |topic| topic.partition_count()),
            }
        }
    }
}

/// Opens every topic under `DATA_DIR/topics`, after finishing interrupted
/// deletes and discarding creations that crashed before `topic.json`.
fn load_topics(
    data_dir: &Path,
    config: &BrokerConfig,
    now_ms: i64,
    shared: &PartitionShared,
) -> Result<TopicMap, BrokerError> {
    let (topics_dir, deleting_dir) = (data_dir.join(TOPICS_DIR), data_dir.join(DELETING_DIR));
    create_dir_durably(&topics_dir)?;
    create_dir_durably(&deleting_dir)?;
    clear_tombstones(&deleting_dir)?;
    let mut topics = TopicMap::new();
    for dir in list_dir(&topics_dir)? {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if !dir.is_dir() || validate_topic_name(name).is_err() {
            tracing::warn!(path = %dir.display(), "ignoring a stray entry among the topics");
            continue;
        }
        match Topic::open(&dir, &config.log, now_ms, shared)? {
            Some(topic) => {
                topics.insert(name.to_owned(), Arc::new(topic));
            }
            None => {
                tracing::warn!(
                    topic = name,
                    "removing a topic whose creation did not finish"
                );
                remove_via_tombstone(&dir, &deleting_dir)?;
            }
        }
    }
    Ok(topics)
}
