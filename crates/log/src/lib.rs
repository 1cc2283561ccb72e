//! The partition log: an append-only sequence of record batches split into
//! segment files named by base offset, each with a sparse offset index and a
//! time index. It is meant to become the Raft log of its partition, so every
//! batch carries a term and the log supports `truncate_after` and
//! `purge_before`.
//!
//! The log is synchronous and owns no threads, sockets or clocks: the caller
//! passes `now_ms` to retention and drives interval fsync by calling
//! [`PartitionLog::sync`]. Storage is pluggable ([`Storage`]): a file backend
//! and an in-memory backend pass one conformance suite.
//!
//! Invariants (checked by `assert!` where cheap):
//! - offsets are dense: batch `n+1` starts at `last_offset(n) + 1`;
//! - terms never decrease along the log;
//! - a batch is only ever served after its CRC was verified when it was
//!   appended or recovered;
//! - `start_offset() <= next_offset()`.

// API CONTRACT (implemented by the log work; signatures are fixed, bodies are not).

use std::path::PathBuf;

use bytes::Bytes;

pub use citystream_record::{Offset, Term};

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
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes_max: 128 * 1024 * 1024,
            index_interval_bytes: 4096,
            fsync: FsyncPolicy::Interval { interval_ms: 5 },
            retention_ms: None,
            retention_bytes: None,
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
    #[error("log directory is corrupt: {0}")]
    Corrupt(String),
}

/// Result of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: Offset,
    pub last_offset: Offset,
    pub max_timestamp_ms: i64,
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

/// A place to keep segment and index files. The file backend maps names to
/// files in one directory; the memory backend keeps them in a map (and can
/// model the loss of unsynced writes for simulations).
pub trait Storage: Send + Sync + std::fmt::Debug {
    // Defined by the log work.
}

pub struct PartitionLog {
    _private: (),
}

impl PartitionLog {
    /// Opens (or creates) a file-backed log in `dir`, recovering it:
    /// rebuilds missing or damaged indexes, cuts a torn or corrupt tail.
    pub fn open(dir: impl Into<PathBuf>, config: LogConfig) -> Result<PartitionLog, LogError> {
        let _ = (dir.into(), config);
        todo!()
    }

    /// A log kept in memory only.
    pub fn in_memory(config: LogConfig) -> PartitionLog {
        let _ = config;
        todo!()
    }

    /// Leader append: validates `batch` (one encoded batch, CRC checked),
    /// assigns it the next offset and `term`, writes it, and fsyncs if the
    /// policy is `Always`.
    pub fn append(&mut self, batch: &mut [u8], term: Term) -> Result<AppendInfo, LogError> {
        let _ = (batch, term);
        todo!()
    }

    /// Follower append: the batch already carries its offset and term, which
    /// must continue the log (`NonContiguous`, `TermWentBackwards` otherwise).
    pub fn append_replicated(&mut self, batch: &[u8]) -> Result<AppendInfo, LogError> {
        let _ = batch;
        todo!()
    }

    /// Reads whole batches starting with the one containing `from`, up to
    /// `max_bytes` (at least one whole batch is returned even if larger, so a
    /// consumer can always make progress).
    pub fn read(&self, from: Offset, max_bytes: usize) -> Result<ReadResult, LogError> {
        let _ = (from, max_bytes);
        todo!()
    }

    /// First offset whose batch's max timestamp is `>= timestamp_ms`, or
    /// `None` if every record is older.
    pub fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<Offset>, LogError> {
        let _ = timestamp_ms;
        todo!()
    }

    /// Removes every batch after the one containing `offset` (Raft log
    /// repair). `offset` must be at a batch boundary end; afterwards
    /// `next_offset() == offset + 1`.
    pub fn truncate_after(&mut self, offset: Offset) -> Result<(), LogError> {
        let _ = offset;
        todo!()
    }

    /// Drops whole segments entirely below `offset` and moves the start
    /// offset up to `offset` (records below it are no longer served).
    pub fn purge_before(&mut self, offset: Offset) -> Result<(), LogError> {
        let _ = offset;
        todo!()
    }

    /// Applies age and size retention; returns how many segments were
    /// deleted. The active segment is never deleted.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<usize, LogError> {
        let _ = now_ms;
        todo!()
    }

    /// Forces written bytes to stable storage (interval policy calls this).
    pub fn sync(&mut self) -> Result<(), LogError> {
        todo!()
    }

    /// First offset still served.
    pub fn start_offset(&self) -> Offset {
        todo!()
    }

    /// Offset the next appended record will get (log end offset).
    pub fn next_offset(&self) -> Offset {
        todo!()
    }

    /// Term of the last batch (0 if empty).
    pub fn last_term(&self) -> Term {
        todo!()
    }

    /// Total bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        todo!()
    }
}
