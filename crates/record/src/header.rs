//! The fixed 80-byte batch header (version 2): encode, decode, the checks
//! that need only the header (attribute bits, the span word), and the four
//! fields the appending leader writes in place (base offset, term, Raft
//! index, base HLC). Record framing and offset deltas are checked in
//! `batch.rs`; compacted and gap batches are made in `compaction.rs`.
//!
//! ```text
//!  0        8        16        24        32      36      40  41  42      44      48
//!  +--------+--------+---------+---------+-------+-------+---+---+-------+-------+
//!  |base_off|  term  |raft_    |base_hlc |batch_ |crc32c |mag|ver| attrs |record_|
//!  |  u64   |  u64   |index u64|  u64    |len u32|  u32  |u8 |u8 |  u16  |cnt u32|
//!  +--------+--------+---------+---------+-------+-------+---+---+-------+-------+
//!  48               56               64               72       76       80
//!  +----------------+----------------+----------------+--------+--------+
//!  |base_timestamp  |max_timestamp   | producer_id    |base_seq| span   |
//!  |  i64 (ms)      |  i64 (ms)      |  u64           |  u32   |  u32   |
//!  +----------------+----------------+----------------+--------+--------+
//! ```
//! All integers little-endian. The fields a leader assigns come first and
//! the CRC-32C covers bytes `[40, batch_len)`: everything after the CRC
//! field. A producer's CRC is therefore never recomputed, and a leader can
//! stamp base offset, term, Raft index and HLC without touching it.
//! `batch_len` is outside the CRC too; a wrong length moves the range the
//! CRC covers and breaks the record framing, so it is caught all the same.
//!
//! The word at byte 76 (reserved and 0 before compaction existed) is the
//! offset **span** of a `COMPACTED` batch: how many offsets it covers, which
//! is more than the records it still holds. It stays 0 in every other batch,
//! whose span is `record_count`; so every batch written before compaction
//! decodes as before, and the version stays 2. A `GAP` batch (always also
//! `COMPACTED`) holds no records and stands for whole batches that
//! compaction removed (decision 0017, §3).
//!
//! Version 1 (a 64-byte header without Raft index and HLC) was never
//! deployed and is not read.

use crate::BatchError;

pub const BATCH_HEADER_LEN: usize = 80;
pub const BATCH_MAGIC: u8 = 0xC5;
pub const BATCH_VERSION: u8 = 2;
/// `producer_id` of a batch sent without idempotence.
pub const NO_PRODUCER: u64 = 0;
/// `base_sequence` of a batch sent without idempotence.
pub const NO_SEQUENCE: u32 = u32::MAX;

/// Offset of the first byte the CRC covers.
const CRC_START: usize = 40;

/// Bits of the `attributes` field.
pub mod attributes {
    /// The batch carries control records (e.g. Raft blank/membership entries)
    /// that consumers skip.
    pub const CONTROL: u16 = 1 << 0;
    /// Log compaction removed records from the batch: the header word at
    /// byte 76 holds the batch's original offset span, and the surviving
    /// records keep their offset deltas. Set only by compaction, never by a
    /// producer.
    pub const COMPACTED: u16 = 1 << 1;
    /// With [`COMPACTED`]: the batch holds no records and covers a run of
    /// wholly removed batches (its span). Set only by compaction.
    pub const GAP: u16 = 1 << 2;
    /// Every bit this version understands; others must be zero.
    pub const KNOWN: u16 = CONTROL | COMPACTED | GAP;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: u64,
    pub term: u64,
    /// Raft log index of the batch: its ordinal in the partition log,
    /// starting at 1. Producers send 0; the appending log assigns it.
    pub raft_index: u64,
    /// Hybrid logical clock of the batch's first offset (see
    /// [`crate::hlc`]); a record has `base_hlc + offset_delta`, which is
    /// `base_hlc + i` for record `i` of an uncompacted batch. Producers send
    /// 0; the leader assigns it.
    pub base_hlc: u64,
    /// Length of the whole batch, header included.
    pub batch_len: u32,
    pub attributes: u16,
    pub crc: u32,
    pub record_count: u32,
    /// Timestamp of the first record; record timestamps are deltas from it.
    pub base_timestamp_ms: i64,
    /// Largest record timestamp in the batch (drives the time index).
    pub max_timestamp_ms: i64,
    pub producer_id: u64,
    pub base_sequence: u32,
    /// The word at byte 76: the offset span of a [`attributes::COMPACTED`]
    /// batch, 0 in every other batch. Read the span with
    /// [`BatchHeader::offset_count`].
    pub compacted_span: u32,
}

impl BatchHeader {
    /// Decodes and checks the header fields (not the CRC: see
    /// [`BatchHeader::verify_crc`]). `bytes` may be longer than one header.
    pub fn decode(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
        if bytes.len() < BATCH_HEADER_LEN {
            return Err(BatchError::Truncated {
                needed: BATCH_HEADER_LEN,
                available: bytes.len(),
            });
        }
        let magic = bytes[40];
        if magic != BATCH_MAGIC {
            return Err(BatchError::BadMagic { found: magic });
        }
        let version = bytes[41];
        if version != BATCH_VERSION {
            return Err(BatchError::UnsupportedVersion { found: version });
        }
        let header = BatchHeader {
            base_offset: u64_at(bytes, 0),
            term: u64_at(bytes, 8),
            raft_index: u64_at(bytes, 16),
            base_hlc: u64_at(bytes, 24),
            batch_len: u32_at(bytes, 32),
            crc: u32_at(bytes, 36),
            attributes: u16_at(bytes, 42),
            record_count: u32_at(bytes, 44),
            base_timestamp_ms: u64_at(bytes, 48) as i64,
            max_timestamp_ms: u64_at(bytes, 56) as i64,
            producer_id: u64_at(bytes, 64),
            base_sequence: u32_at(bytes, 72),
            compacted_span: u32_at(bytes, 76),
        };
        if (header.batch_len as usize) < BATCH_HEADER_LEN {
            return Err(BatchError::BadLength {
                batch_len: header.batch_len,
            });
        }
        let unknown = header.attributes & !attributes::KNOWN;
        if unknown != 0 {
            return Err(BatchError::ReservedBits { bits: unknown });
        }
        header.check_span()?;
        Ok(header)
    }

    /// Checks that the attribute bits, the span word and the record count
    /// agree: the span word only with `COMPACTED`, `GAP` only with
    /// `COMPACTED`; a compacted batch removed at least one record and kept
    /// one, unless it is a gap, which keeps none and has no producer.
    fn check_span(&self) -> Result<(), BatchError> {
        let error = |reason| BatchError::BadSpan {
            span: self.compacted_span,
            record_count: self.record_count,
            attributes: self.attributes,
            reason,
        };
        if !self.is_compacted() {
            return match (self.is_gap(), self.compacted_span) {
                (true, _) => Err(error("GAP is set without COMPACTED")),
                (false, 0) => Ok(()),
                (false, _) => Err(error("span word is set without COMPACTED")),
            };
        }
        if self.is_gap() {
            if self.record_count != 0 {
                return Err(error("a GAP batch holds no records"));
            }
            if self.producer_id != NO_PRODUCER || self.base_sequence != NO_SEQUENCE {
                return Err(error("a GAP batch has no producer"));
            }
            if self.compacted_span == 0 {
                return Err(error("a GAP batch covers at least one offset"));
            }
            return Ok(());
        }
        if self.record_count == 0 || self.record_count >= self.compacted_span {
            return Err(error(
                "a COMPACTED batch keeps at least one record and removed one",
            ));
        }
        Ok(())
    }

    /// Writes the header into the first [`BATCH_HEADER_LEN`] bytes of `out`.
    pub fn encode(&self, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.base_offset.to_le_bytes());
        out[8..16].copy_from_slice(&self.term.to_le_bytes());
        out[16..24].copy_from_slice(&self.raft_index.to_le_bytes());
        out[24..32].copy_from_slice(&self.base_hlc.to_le_bytes());
        out[32..36].copy_from_slice(&self.batch_len.to_le_bytes());
        out[36..40].copy_from_slice(&self.crc.to_le_bytes());
        out[40] = BATCH_MAGIC;
        out[41] = BATCH_VERSION;
        out[42..44].copy_from_slice(&self.attributes.to_le_bytes());
        out[44..48].copy_from_slice(&self.record_count.to_le_bytes());
        out[48..56].copy_from_slice(&self.base_timestamp_ms.to_le_bytes());
        out[56..64].copy_from_slice(&self.max_timestamp_ms.to_le_bytes());
        out[64..72].copy_from_slice(&self.producer_id.to_le_bytes());
        out[72..76].copy_from_slice(&self.base_sequence.to_le_bytes());
        out[76..80].copy_from_slice(&self.compacted_span.to_le_bytes());
    }

    /// How many offsets the batch covers (its span): `record_count`, or the
    /// original span kept in the header word by compaction.
    pub fn offset_count(&self) -> u32 {
        if self.is_compacted() {
            self.compacted_span
        } else {
            self.record_count
        }
    }

    /// Last offset the batch covers (`base_offset + span - 1`); the offset
    /// of its last record unless compaction removed that record.
    pub fn last_offset(&self) -> u64 {
        self.base_offset + u64::from(self.offset_count().max(1)) - 1
    }

    /// Offset the next batch after this one starts at (`base_offset + span`).
    pub fn next_offset(&self) -> u64 {
        self.base_offset + u64::from(self.offset_count())
    }

    /// HLC of the batch's last offset (`base_hlc + span - 1`): the largest
    /// HLC the batch holds or, after compaction, held.
    pub fn last_hlc(&self) -> u64 {
        self.base_hlc
            .wrapping_add(u64::from(self.offset_count().max(1)) - 1)
    }

    pub fn is_control(&self) -> bool {
        self.attributes & attributes::CONTROL != 0
    }

    /// Compaction removed records from this batch (a gap is compacted too).
    pub fn is_compacted(&self) -> bool {
        self.attributes & attributes::COMPACTED != 0
    }

    /// The batch stands for wholly removed batches and holds no records.
    pub fn is_gap(&self) -> bool {
        self.attributes & attributes::GAP != 0
    }

    /// Checks the CRC of a whole batch whose header is `self`.
    pub fn verify_crc(&self, batch: &[u8]) -> Result<(), BatchError> {
        let len = self.batch_len as usize;
        if batch.len() < len {
            return Err(BatchError::Truncated {
                needed: len,
                available: batch.len(),
            });
        }
        let actual = crc32c(&batch[CRC_START..len]);
        if actual != self.crc {
            return Err(BatchError::CrcMismatch {
                expected: self.crc,
                actual,
            });
        }
        Ok(())
    }
}

/// CRC-32C (Castagnoli), the checksum Kafka uses for the same purpose.
pub fn crc32c(bytes: &[u8]) -> u32 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, bytes) as u32
}

/// Rewrites the base offset of an encoded batch (not covered by the CRC).
pub fn set_base_offset(batch: &mut [u8], base_offset: u64) {
    batch[0..8].copy_from_slice(&base_offset.to_le_bytes());
}

/// Rewrites the term of an encoded batch (not covered by the CRC).
pub fn set_term(batch: &mut [u8], term: u64) {
    batch[8..16].copy_from_slice(&term.to_le_bytes());
}

/// Rewrites the Raft index of an encoded batch (not covered by the CRC).
pub fn set_raft_index(batch: &mut [u8], raft_index: u64) {
    batch[16..24].copy_from_slice(&raft_index.to_le_bytes());
}

/// Rewrites the HLC of the first record of an encoded batch (not covered
/// by the CRC).
pub fn set_base_hlc(batch: &mut [u8], base_hlc: u64) {
    batch[24..32].copy_from_slice(&base_hlc.to_le_bytes());
}

/// Rewrites the producer id and base sequence of an encoded batch and its
/// CRC (both fields are covered by it). An idempotent producer re-numbers a
/// batch this way when it must re-send it under other sequences (an earlier
/// batch was refused, or it started over with a new producer id); the
/// records are untouched.
///
/// Panics if `batch` is shorter than a header or its `batch_len`.
pub fn set_producer(batch: &mut [u8], producer_id: u64, base_sequence: u32) {
    let len = u32_at(batch, 32) as usize;
    assert!(
        len >= BATCH_HEADER_LEN && batch.len() >= len,
        "set_producer needs a whole encoded batch"
    );
    batch[64..72].copy_from_slice(&producer_id.to_le_bytes());
    batch[72..76].copy_from_slice(&base_sequence.to_le_bytes());
    compute_and_store_crc(&mut batch[..len]);
}

pub(crate) fn compute_and_store_crc(batch: &mut [u8]) {
    let crc = crc32c(&batch[CRC_START..]);
    batch[36..40].copy_from_slice(&crc.to_le_bytes());
}

pub(crate) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

pub(crate) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

pub(crate) fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(bytes[at..at + 2].try_into().expect("2 bytes"))
}
