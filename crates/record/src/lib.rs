//! The record batch: the one binary format that a producer builds, the wire
//! carries, the partition log stores and a consumer parses. A batch is moved
//! as opaque bytes from socket to disk and back; only its fixed-width header
//! is rewritten (base offset, term, Raft index and base HLC, which the CRC
//! does not cover) when the partition leader appends it.
//!
//! This crate owns the byte layout, its validation, the newtypes for
//! offsets and terms, the hybrid logical clock whose values batches carry
//! ([`HybridClock`], pure: the caller passes the time), and the pure
//! rewrites log compaction makes of a batch ([`compact_batch`],
//! [`gap_batch`]). It does not know about files, sockets or the system
//! clock, nor which records compaction removes (the log decides). The
//! layout is drawn in `docs/storage-format.md`.

mod batch;
mod builder;
mod compaction;
mod header;
pub mod hlc;
mod partitioner;

pub use batch::{BatchIter, Record, RecordBatch, RecordIter};
pub use builder::{BatchBuilder, PushError};
pub use compaction::{compact_batch, gap_batch};
pub use header::{
    BATCH_HEADER_LEN, BATCH_MAGIC, BATCH_VERSION, BatchHeader, NO_PRODUCER, NO_SEQUENCE,
    attributes, crc32c, set_base_hlc, set_base_offset, set_producer, set_raft_index, set_term,
};
pub use hlc::{HybridClock, hlc_from_parts, hlc_logical, hlc_physical_ms};
pub use partitioner::{murmur2, partition_for_key};

/// Position of a record in its partition; the first record ever written is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset(pub u64);

/// Raft term of the leader that appended a batch (0 on a single broker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Term(pub u64);

impl std::fmt::Display for Offset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Display for Term {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Why bytes are not a valid batch. Every variant names what was wrong so a
/// broker can answer a producer with a precise message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("batch truncated: need {needed} bytes, have {available}")]
    Truncated { needed: usize, available: usize },
    #[error("bad batch magic 0x{found:02x} (expected 0x{BATCH_MAGIC:02x})")]
    BadMagic { found: u8 },
    #[error("unsupported batch version {found} (this build reads {BATCH_VERSION})")]
    UnsupportedVersion { found: u8 },
    #[error("batch length {batch_len} is invalid (minimum {BATCH_HEADER_LEN})")]
    BadLength { batch_len: u32 },
    #[error("batch CRC mismatch: header says 0x{expected:08x}, bytes give 0x{actual:08x}")]
    CrcMismatch { expected: u32, actual: u32 },
    #[error("batch holds no records")]
    Empty,
    #[error("record {index} of the batch is malformed: {reason}")]
    BadRecord { index: u32, reason: &'static str },
    #[error("reserved header bits are set (0x{bits:04x})")]
    ReservedBits { bits: u16 },
    #[error(
        "batch span word {span} does not agree with its {record_count} records and attributes 0x{attributes:04x}: {reason}"
    )]
    BadSpan {
        span: u32,
        record_count: u32,
        attributes: u16,
        reason: &'static str,
    },
}
