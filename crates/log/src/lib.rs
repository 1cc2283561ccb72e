//! The partition log: an append-only sequence of record batches split into
//! segment files named by base offset, each with a sparse offset index and a
//! time index. It is meant to become the Raft log of its partition, so every
//! batch carries a term and a Raft index (its ordinal in the log, from 1),
//! and the log supports `truncate_after`, `purge_before` and lookup by Raft
//! index.
//!
//! The log is synchronous and owns no threads, sockets or clocks: the caller
//! passes `now_ms` to retention and drives interval fsync by calling
//! [`PartitionLog::sync`]. Storage is pluggable ([`Storage`]): a file backend
//! and an in-memory backend pass one conformance suite.
//!
//! Invariants (checked by `assert!` where cheap):
//! - offsets are dense: batch `n+1` starts at `last_offset(n) + 1`;
//! - Raft indexes are dense: batch `n+1` has `raft_index(n) + 1` (or more
//!   if it is a compaction `GAP` batch, which stands for the entries up to
//!   its own), and no stored batch has index 0 ("no entry");
//! - terms never decrease along the log;
//! - a batch is only ever served after its CRC was verified when it was
//!   appended or recovered, and it is verified again on every read;
//! - `start_offset() <= next_offset()`, and the clean point of compaction
//!   is at most `next_offset()`;
//! - there is always an active (last) segment, and segments are contiguous.
//!
//! Module map: `append` (append path, roll), `read` (read path, lookup),
//! `raft_index` (lookup by Raft index),
//! `truncate` (truncate_after, reset), `retention` (purge, retention),
//! `compaction` (newest record per key below a horizon, decision 0017),
//! `restore` (staging a snapshot prefix and swapping it in, decision 0017
//! §5), `recovery` (open), `segment` (one segment's files), `index` (sparse
//! indexes), `scan` (walking batches in a file), `log_start` (the start
//! offset file), `storage` (file and memory backends). The on-disk format
//! is drawn in `docs/storage-format.md`.

// API CONTRACT (implemented by the log work; signatures are fixed, bodies are not).

mod append;
mod compaction;
mod index;
mod log_start;
mod raft_index;
mod read;
mod recovery;
mod restore;
mod retention;
mod scan;
mod segment;
mod storage;
mod truncate;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

pub use citystream_record::{BatchHeader, Offset, Term};
pub use compaction::{
    Cleaned, CompactionParams, CompactionPlan, CompactionSummary, InputSegment, KEY_MAP_ENTRY_BYTES,
};
pub use restore::StageOutcome;
pub use storage::{FileStorage, FileSyncer, MemoryStorage, Storage, StorageFile};

use crate::log_start::LogStart;
use crate::read::ReadHint;
use crate::segment::Segment;

/// Small files the log's owner (the Raft layer) keeps in the log's storage
/// beside the segments: recovery leaves them alone without a warning.
pub const OWNER_FILES: &[&str] = &["raft-state", "sm-state"];

/// When appended bytes are forced to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// fsync before `append` returns.
    Always,
    /// The owner calls [`PartitionLog::sync`] every `interval_ms` (group commit).
    Interval { interval_ms: u64 },
    /// Never fsync (rely on replication or the OS).
    Never,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Roll to a new segment once the active one reaches this size.
    pub segment_bytes_max: u64,
    /// Add an offset/time index entry every this many bytes of batches.
    pub index_interval_bytes: u32,
    pub fsync: FsyncPolicy,
    /// Delete whole segments whose newest record is older than this.
    pub retention_ms: Option<u64>,
    /// Delete the oldest whole segments while the log is larger than this.
    pub retention_bytes: Option<u64>,
    /// Roll a non-empty active segment once its first batch's timestamp is
    /// this much older than the owner's clock, so a quiet compacted topic
    /// still gets closed segments to compact (decision 0017 §6). Checked
    /// only by [`PartitionLog::roll_if_older`]: `append` takes no clock.
    pub segment_roll_ms: Option<u64>,
    /// The log is compacted (decision 0017): in a replicated log a Raft
    /// purge keeps its data below the purge point, where compaction may
    /// rewrite it, and a snapshot carries that prefix.
    pub compacted: bool,
    /// Records newer than this stay untouched by compaction (the topic's
    /// `compaction_lag_ms`, raised to the broker's floor by its owner).
    pub compaction_lag_ms: u64,
    /// How long a tombstone outlives what it deletes, in log time
    /// (Kafka's `delete.retention.ms`).
    pub tombstone_retention_ms: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes_max: 128 * 1024 * 1024,
            index_interval_bytes: 4096,
            fsync: FsyncPolicy::Interval { interval_ms: 5 },
            retention_ms: None,
            retention_bytes: None,
            segment_roll_ms: None,
            compacted: false,
            compaction_lag_ms: 0,
            tombstone_retention_ms: 86_400_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid batch: {0}")]
    InvalidBatch(#[from] citystream_record::BatchError),
    #[error("offset {requested} is out of range [{start}, {end}]")]
    OffsetOutOfRange {
        requested: u64,
        start: u64,
        end: u64,
    },
    #[error("batch term {batch_term} is lower than the log's last term {last_term}")]
    TermWentBackwards { batch_term: u64, last_term: u64 },
    #[error("batch base offset {found} does not follow the log end {expected}")]
    NonContiguous { expected: u64, found: u64 },
    #[error("batch Raft index {found} does not follow the log's last index (expected {expected})")]
    RaftIndexNonContiguous { expected: u64, found: u64 },
    #[error("log directory is corrupt: {0}")]
    Corrupt(String),
    #[error(
        "snapshot chunk [{from_offset}, {end_offset}) does not continue the staged prefix \
         [{staged_start}, {staged_end})"
    )]
    StagedMismatch {
        from_offset: u64,
        end_offset: u64,
        staged_start: u64,
        staged_end: u64,
    },
    #[error("no snapshot prefix is staged")]
    NothingStaged,
}

/// Result of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: Offset,
    pub last_offset: Offset,
    pub max_timestamp_ms: i64,
    /// Raft index of the appended batch.
    pub raft_index: u64,
}

/// The fsyncs a [`PartitionLog::begin_sync`] found to do.
#[derive(Debug)]
pub struct PendingSync {
    segments: Vec<segment::SegmentSync>,
}

impl PendingSync {
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Runs the fsyncs (slow; do not hold the log's lock).
    pub fn run(self) -> Result<SyncDone, LogError> {
        for segment in &self.segments {
            segment.run()?;
        }
        let segments = self
            .segments
            .iter()
            .map(|s| (s.base_offset, s.writes))
            .collect();
        Ok(SyncDone { segments })
    }
}

/// Proof that a [`PendingSync`] ran, for [`PartitionLog::finish_sync`].
#[derive(Debug)]
pub struct SyncDone {
    segments: Vec<(u64, u64)>,
}

/// Bytes returned by a read: whole batches, concatenated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    /// Concatenated whole batches; the first one contains `from` (it may
    /// start before it: consumers skip records below `from`). Empty when
    /// `from == next_offset()`.
    pub bytes: Bytes,
    /// The log end offset at the time of the read.
    pub next_offset: Offset,
}

pub struct PartitionLog {
    storage: Arc<dyn Storage>,
    config: LogConfig,
    /// Oldest first; never empty; the last one is the active segment.
    segments: Vec<Segment>,
    /// Start offset, floor term and floor Raft index, as last written to
    /// `log-start-offset`.
    log_start: LogStart,
    /// Term of the last batch, or the floor term if there is none.
    last_term: u64,
    /// Raft index of the last batch, or the floor index if there is none.
    last_raft_index: u64,
    /// Where the last read ended, so a consumer's next read skips the index.
    read_hint: Mutex<Option<ReadHint>>,
    /// Changes whenever bytes of existing segments may change other than
    /// by deleting whole ones (truncate, reset, restore, a compaction
    /// commit); unique across logs, so a compaction planned in another
    /// shape, or on another log, is never committed.
    epoch: u64,
    /// A snapshot prefix being received (`restore`).
    staged: Option<restore::Staged>,
}

/// A fresh value for [`PartitionLog`]'s `epoch`.
fn next_epoch() -> u64 {
    static NEXT_EPOCH: AtomicU64 = AtomicU64::new(1);
    NEXT_EPOCH.fetch_add(1, Ordering::Relaxed)
}

impl std::fmt::Debug for PartitionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionLog")
            .field("storage", &self.storage)
            .field("start_offset", &self.log_start.start_offset)
            .field("clean_end_offset", &self.log_start.clean_end_offset)
            .field("next_offset", &self.next_offset().0)
            .field("last_term", &self.last_term)
            .field("last_raft_index", &self.last_raft_index)
            .field("segments", &self.segments.len())
            .finish()
    }
}

impl PartitionLog {
    /// Opens (or creates) a file-backed log in `dir`, recovering it:
    /// rebuilds missing or damaged indexes, cuts a torn or corrupt tail.
    pub fn open(dir: impl Into<PathBuf>, config: LogConfig) -> Result<PartitionLog, LogError> {
        let dir = dir.into();
        let storage =
            FileStorage::new(&dir).map_err(|source| LogError::Io { path: dir, source })?;
        PartitionLog::open_with(Arc::new(storage), config)
    }

    /// A log kept in memory only.
    pub fn in_memory(config: LogConfig) -> PartitionLog {
        PartitionLog::open_with(Arc::new(MemoryStorage::new()), config)
            .expect("an empty in-memory log always opens")
    }

    /// Opens (or creates) a log on any [`Storage`], recovering it as
    /// [`PartitionLog::open`] does. `segment_bytes_max` is clamped to
    /// `[BATCH_HEADER_LEN, u32::MAX]` (index positions are `u32`).
    pub fn open_with(
        storage: Arc<dyn Storage>,
        mut config: LogConfig,
    ) -> Result<PartitionLog, LogError> {
        config.segment_bytes_max = config.segment_bytes_max.clamp(
            citystream_record::BATCH_HEADER_LEN as u64,
            u64::from(u32::MAX),
        );
        let (segments, log_start) = recovery::recover(&*storage, config.index_interval_bytes)?;
        let staged = restore::Staged::recover(&*storage)?;
        let mut log = PartitionLog {
            storage,
            config,
            segments,
            log_start,
            last_term: 0,
            last_raft_index: 0,
            read_hint: Mutex::new(None),
            epoch: next_epoch(),
            staged,
        };
        log.derive_last();
        log.check_invariants();
        Ok(log)
    }

    /// Leader append: validates `batch` (one encoded batch, CRC checked),
    /// assigns it the next offset, `term` and the next Raft index
    /// (`last_raft_index() + 1`; 1 for the first batch of a new log), writes
    /// it, and fsyncs if the policy is `Always`. Other header fields, such
    /// as the base HLC, are the caller's to set before.
    pub fn append(&mut self, batch: &mut [u8], term: Term) -> Result<AppendInfo, LogError> {
        self.append_leader(batch, term)
    }

    /// Follower append: the batch already carries its offset, term and Raft
    /// index, which must continue the log (`NonContiguous`,
    /// `RaftIndexNonContiguous`, `TermWentBackwards` otherwise).
    pub fn append_replicated(&mut self, batch: &[u8]) -> Result<AppendInfo, LogError> {
        self.append_follower(batch)
    }

    /// Rolls the active segment if `config().segment_roll_ms` is set, the
    /// segment holds a batch, and its first batch's time (that batch's max
    /// timestamp, as Kafka's `segment.ms` uses) is more than the setting
    /// older than `now_ms`; returns whether it rolled. The owner calls it
    /// under its write lock from its timer (`append` takes no clock), so a
    /// quiet compacted topic still gets closed segments to compact. A
    /// control batch (timestamp 0) first in a segment makes it roll at the
    /// next check: harmless, compaction merges small segments.
    pub fn roll_if_older(&mut self, now_ms: i64) -> Result<bool, LogError> {
        self.roll_if_older_at(now_ms)
    }

    /// Reads whole batches starting with the one containing `from`, up to
    /// `max_bytes` (at least one whole batch is returned even if larger, so a
    /// consumer can always make progress). Only batches of one segment are
    /// returned; every batch's CRC is checked again before it is served.
    pub fn read(&self, from: Offset, max_bytes: usize) -> Result<ReadResult, LogError> {
        self.read_batches(from.0, max_bytes)
    }

    /// Headers of up to `count_max` whole batches starting with the one
    /// containing `from` (for Raft: batch boundaries and terms without the
    /// records). Empty when `from == next_offset()`.
    pub fn read_batch_headers(
        &self,
        from: Offset,
        count_max: usize,
    ) -> Result<Vec<BatchHeader>, LogError> {
        self.read_headers(from.0, count_max)
    }

    /// Header of the batch with Raft index `raft_index`, if the log still
    /// serves any of its records (`None` for 0, for indexes past
    /// [`Self::last_raft_index`] and for batches purged or below the
    /// start). Binary search over segments by their first batch's index,
    /// then over the sparse offset index (reading the header each entry
    /// points to: offsets and indexes grow together), then headers forward.
    pub fn locate_raft_index(&self, raft_index: u64) -> Result<Option<BatchHeader>, LogError> {
        self.locate_raft(raft_index)
    }

    /// Offset of the first record (in log order) whose timestamp is
    /// `>= timestamp_ms`, or `None` if every record is older. A batch that
    /// reaches the time but lost those records to compaction (a `GAP`, or
    /// a `COMPACTED` batch keeping its original max timestamp) is passed
    /// over: the answer is the next surviving record (decision 0017 §7).
    pub fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<Offset>, LogError> {
        let mut from = self.log_start.start_offset;
        // Each step moves `from` past one batch, so this ends at the log end.
        while let Some(batch_offset) = self.first_batch_reaching(timestamp_ms, from)? {
            match self.first_record_at_or_after(Offset(batch_offset), timestamp_ms)? {
                (Some(offset), _) => return Ok(Some(offset)),
                (None, next_offset) => from = next_offset,
            }
        }
        Ok(None)
    }

    /// Removes every batch after `offset`. Raft-friendly semantics: batches
    /// whose last offset is `<= offset` are kept and the rest removed, so if
    /// `offset` falls inside a batch that whole batch is removed too and
    /// `next_offset()` becomes its base offset (`<= offset`); at a batch end,
    /// `next_offset() == offset + 1`. `offset` may be `start_offset() - 1`
    /// (empties the log); a no-op at `next_offset() - 1`; `OffsetOutOfRange`
    /// outside that range. To empty a log starting at 0 use [`Self::reset`].
    /// If the removed batch straddles the start offset (after a purge to
    /// the middle of a batch), the log ends up empty at that batch's base
    /// offset, which becomes the start offset; `last_term()` is then the
    /// term recorded for the old start, and `last_raft_index()` the removed
    /// batch's index minus one (so the next append takes its index).
    /// `last_raft_index()` always follows the kept batches. Durable on
    /// return unless the fsync policy is `Never`.
    pub fn truncate_after(&mut self, offset: Offset) -> Result<(), LogError> {
        self.truncate_after_offset(offset.0)
    }

    /// Empties the log and restarts it at `next_offset` with `last_term() ==
    /// term` and `last_raft_index() == next_raft_index - 1`, as a follower
    /// does after installing a snapshot (whose last entry has index
    /// `next_raft_index - 1`). Durable on return.
    ///
    /// Panics if `next_raft_index` is 0: Raft indexes start at 1.
    pub fn reset(
        &mut self,
        next_offset: Offset,
        term: Term,
        next_raft_index: u64,
    ) -> Result<(), LogError> {
        self.reset_to(next_offset.0, term.0, next_raft_index)
    }

    /// Drops whole segments entirely below `offset` and moves the start
    /// offset up to `offset` (records below it are no longer served).
    /// `offset` above `next_offset()` is `OffsetOutOfRange`; at or below the
    /// start it is a no-op. Durable on return.
    pub fn purge_before(&mut self, offset: Offset) -> Result<(), LogError> {
        self.purge_before_offset(offset.0)
    }

    /// Applies age and size retention; returns how many segments were
    /// deleted. The active segment is never deleted.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<usize, LogError> {
        self.apply_retention_at(now_ms)
    }

    /// The last batch of the segments [`Self::apply_retention`] would
    /// delete at `now_ms`, without deleting anything: a replicated log
    /// deletes only after its Raft group took a snapshot there (decision
    /// 0005 §2), then calls [`Self::purge_before`] with the offset after
    /// it. `None` if retention would delete nothing.
    pub fn retention_point(&self, now_ms: i64) -> Option<BatchHeader> {
        self.retention_point_at(now_ms)
    }

    /// Where a compaction pass may reach when records newer than
    /// `cutoff_ms` must stay untouched (the topic's compaction lag): the
    /// last batch of the oldest closed segments whose records are all at
    /// or before it, if the log is not compacted that far yet and at
    /// least `dirty_ratio_min_percent` of those segments' bytes are past
    /// the clean point (so a large compacted log is not rewritten whole
    /// for every segment that closes). A replicated log snapshots and
    /// purges there first (decision 0017 §5).
    pub fn compaction_point(
        &self,
        cutoff_ms: i64,
        dirty_ratio_min_percent: u8,
    ) -> Option<BatchHeader> {
        self.compaction_point_at(cutoff_ms, dirty_ratio_min_percent)
    }

    /// The term and Raft index of the batch just below the start offset
    /// (what a snapshot there covers; `(0, 0)` if nothing was purged).
    pub fn floor(&self) -> (Term, u64) {
        (
            Term(self.log_start.floor_term),
            self.log_start.floor_raft_index,
        )
    }

    /// Forces written bytes to stable storage (interval policy calls this).
    pub fn sync(&mut self) -> Result<(), LogError> {
        for segment in &mut self.segments {
            segment.sync()?;
        }
        Ok(())
    }

    /// Group commit without blocking the log: call this under the owner's
    /// lock, run [`PendingSync::run`] (the fsyncs) outside it, then hand the
    /// result to [`PartitionLog::finish_sync`] under the lock again. Appends
    /// and reads go on while the disk syncs; bytes appended meanwhile are
    /// only counted as synced by a later sync.
    pub fn begin_sync(&mut self) -> Result<PendingSync, LogError> {
        let mut segments = Vec::new();
        for segment in &mut self.segments {
            segments.extend(segment.begin_sync()?);
        }
        Ok(PendingSync { segments })
    }

    /// Records a completed [`PendingSync`].
    pub fn finish_sync(&mut self, done: SyncDone) {
        for (base_offset, writes) in done.segments {
            if let Some(segment) = self
                .segments
                .iter_mut()
                .find(|s| s.base_offset() == base_offset)
            {
                segment.finish_sync(writes);
            }
        }
    }

    /// First offset still served.
    pub fn start_offset(&self) -> Offset {
        Offset(self.log_start.start_offset)
    }

    /// Offset the next appended record will get (log end offset).
    pub fn next_offset(&self) -> Offset {
        Offset(self.active().next_offset())
    }

    /// Term of the last batch (0 if empty). When the log serves no record
    /// (`start_offset() == next_offset()`), the term of the record just
    /// before the start: the term given to [`Self::reset`], or that of the
    /// last purged or retention-deleted record (Raft's snapshot term).
    pub fn last_term(&self) -> Term {
        Term(self.last_term)
    }

    /// Raft index of the last batch (0 if nothing was ever appended). When
    /// the log serves no record, the index of the batch just before the
    /// start: `next_raft_index - 1` of [`Self::reset`], or that of the last
    /// purged or retention-deleted batch (Raft's snapshot index). The next
    /// leader append gets this plus one.
    pub fn last_raft_index(&self) -> u64 {
        self.last_raft_index
    }

    /// Header of the last batch, if the log serves any record.
    pub fn last_batch(&self) -> Option<BatchHeader> {
        if self.next_offset().0 == self.log_start.start_offset {
            return None;
        }
        let last = self.segments.iter().rev().find_map(Segment::last_batch);
        Some(last.expect("a log serving records holds a batch"))
    }

    /// Total bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(Segment::size_bytes).sum()
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// The configuration in force (after clamping).
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    fn active(&self) -> &Segment {
        self.segments
            .last()
            .expect("a log always has an active segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .expect("a log always has an active segment")
    }

    /// Sets the last term and Raft index: the last batch's if the log
    /// serves any, else the floor ones (of the record before the start
    /// offset). Deliberately not "the newest batch on disk": bytes below the
    /// start may or may not still exist, depending on segment boundaries.
    fn derive_last(&mut self) {
        (self.last_term, self.last_raft_index) = match self.last_batch() {
            Some(last) => (last.term, last.raft_index),
            None => (self.log_start.floor_term, self.log_start.floor_raft_index),
        };
    }

    /// Cheap structural invariants, checked after every change of shape.
    fn check_invariants(&self) {
        assert!(!self.segments.is_empty(), "no active segment");
        for pair in self.segments.windows(2) {
            assert_eq!(
                pair[0].next_offset(),
                pair[1].base_offset(),
                "offsets are not dense"
            );
        }
        assert!(self.segments[0].base_offset() <= self.log_start.start_offset);
        assert!(self.log_start.start_offset <= self.active().next_offset());
        assert!(
            self.log_start.clean_end_offset <= self.active().next_offset(),
            "the clean point is inside the log"
        );
    }
}

// The broker shares a log behind a `RwLock` across threads.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PartitionLog>();
};

impl Drop for PartitionLog {
    fn drop(&mut self) {
        // Saves recovery a scan on the next open; losing it is harmless.
        let _ = self.active_mut().flush_indexes();
    }
}
