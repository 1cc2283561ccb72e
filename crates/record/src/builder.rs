//! Building a batch record by record, as a producer does before sending.
//! The builder writes `offset_delta = i` for record `i`; only compaction
//! (`compaction.rs`) makes batches whose deltas skip.
//!
//! ```text
//! record:
//!  0        4          8           12
//!  +--------+----------+-----------+---------+-----+----------+-------+--------------+---------+
//!  |len u32 |ts_delta  |offset_    |key_len  | key |value_len | value |header_count  | headers |
//!  |(rest)  |i32 (ms)  |delta u32  |u32 (MAX |     |u32 (MAX |       |u16           |         |
//!  |        |          |           | = none) |     | = null) |       |              |         |
//!  +--------+----------+-----------+---------+-----+----------+-------+--------------+---------+
//! header: u16 name_len, name (UTF-8), u32 value_len, value
//! ```
//!
//! A null value (`value_len = u32::MAX`, no value bytes) is a tombstone: it
//! tells log compaction to delete the record's key. It is distinct from an
//! empty value (`value_len = 0`).

use bytes::Bytes;

use crate::header::{
    BATCH_HEADER_LEN, BatchHeader, NO_PRODUCER, NO_SEQUENCE, compute_and_store_crc,
};

/// Key length that marks a record without a key.
pub(crate) const NO_KEY: u32 = u32::MAX;
/// Value length that marks a null value (a tombstone).
pub(crate) const NO_VALUE: u32 = u32::MAX;

/// Why a record could not be added; the batch is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error(
        "record timestamp is more than 24 days from the batch's first record; start a new batch"
    )]
    TimestampOutOfRange,
    #[error("header name is longer than 65535 bytes")]
    HeaderNameTooLong,
    #[error("record has more than 65535 headers")]
    TooManyHeaders,
    #[error("batch would exceed 4 GiB")]
    BatchTooLarge,
}

/// Accumulates records into one encoded batch. Base offset, term, Raft
/// index and base HLC are left 0 for the appending leader to assign.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    buf: Vec<u8>,
    record_count: u32,
    base_timestamp_ms: i64,
    max_timestamp_ms: i64,
    producer_id: u64,
    base_sequence: u32,
    attributes: u16,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl BatchBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder whose buffer is pre-sized for `bytes` of records.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(BATCH_HEADER_LEN + bytes);
        buf.resize(BATCH_HEADER_LEN, 0);
        BatchBuilder {
            buf,
            record_count: 0,
            base_timestamp_ms: 0,
            max_timestamp_ms: i64::MIN,
            producer_id: NO_PRODUCER,
            base_sequence: NO_SEQUENCE,
            attributes: 0,
        }
    }

    /// Marks the batch as an idempotent producer's batch.
    pub fn set_producer(&mut self, producer_id: u64, base_sequence: u32) {
        self.producer_id = producer_id;
        self.base_sequence = base_sequence;
    }

    /// Sets header attribute bits (see [`crate::attributes`]).
    ///
    /// Panics on `COMPACTED` or `GAP`: a builder writes dense offset deltas,
    /// and only [`crate::compact_batch`] and [`crate::gap_batch`] make
    /// compacted batches.
    pub fn set_attributes(&mut self, attributes: u16) {
        assert!(
            attributes & (crate::attributes::COMPACTED | crate::attributes::GAP) == 0,
            "compaction bits are set by compaction, not by a builder"
        );
        self.attributes = attributes;
    }

    /// Appends one record. Headers are `(name, value)` pairs.
    pub fn push(
        &mut self,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: &[u8],
        headers: &[(&str, &[u8])],
    ) -> Result<(), PushError> {
        self.push_record(timestamp_ms, key, Some(value), headers)
    }

    /// Appends one record with a null value: a tombstone for `key`.
    pub fn push_tombstone(
        &mut self,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        headers: &[(&str, &[u8])],
    ) -> Result<(), PushError> {
        self.push_record(timestamp_ms, key, None, headers)
    }

    /// Appends one record whose value may be null (`None`, a tombstone).
    pub fn push_record(
        &mut self,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, &[u8])],
    ) -> Result<(), PushError> {
        if self.record_count == 0 {
            self.base_timestamp_ms = timestamp_ms;
        }
        let delta = i32::try_from(timestamp_ms.wrapping_sub(self.base_timestamp_ms))
            .map_err(|_| PushError::TimestampOutOfRange)?;
        let header_count = u16::try_from(headers.len()).map_err(|_| PushError::TooManyHeaders)?;
        if headers
            .iter()
            .any(|(name, _)| name.len() > usize::from(u16::MAX))
        {
            return Err(PushError::HeaderNameTooLong);
        }
        let len = record_len(key, value, headers);
        if self.buf.len() + 4 + len > u32::MAX as usize
            || key.is_some_and(|k| k.len() >= NO_KEY as usize)
            || value.is_some_and(|v| v.len() >= NO_VALUE as usize)
        {
            return Err(PushError::BatchTooLarge);
        }
        let buf = &mut self.buf;
        buf.reserve(4 + len);
        buf.extend_from_slice(&(len as u32).to_le_bytes());
        buf.extend_from_slice(&delta.to_le_bytes());
        buf.extend_from_slice(&self.record_count.to_le_bytes());
        match key {
            Some(key) => {
                buf.extend_from_slice(&(key.len() as u32).to_le_bytes());
                buf.extend_from_slice(key);
            }
            None => buf.extend_from_slice(&NO_KEY.to_le_bytes()),
        }
        match value {
            Some(value) => {
                buf.extend_from_slice(&(value.len() as u32).to_le_bytes());
                buf.extend_from_slice(value);
            }
            None => buf.extend_from_slice(&NO_VALUE.to_le_bytes()),
        }
        buf.extend_from_slice(&header_count.to_le_bytes());
        for (name, value) in headers {
            buf.extend_from_slice(&(name.len() as u16).to_le_bytes());
            buf.extend_from_slice(name.as_bytes());
            buf.extend_from_slice(&(value.len() as u32).to_le_bytes());
            buf.extend_from_slice(value);
        }
        self.record_count += 1;
        self.max_timestamp_ms = self.max_timestamp_ms.max(timestamp_ms);
        Ok(())
    }

    pub fn record_count(&self) -> u32 {
        self.record_count
    }

    pub fn is_empty(&self) -> bool {
        self.record_count == 0
    }

    /// Encoded size so far, header included.
    pub fn size_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Writes header and CRC and returns the encoded batch.
    ///
    /// Panics if the batch is empty: an empty batch is never valid.
    pub fn finish(self) -> Bytes {
        Bytes::from(self.finish_vec())
    }

    /// As [`BatchBuilder::finish`], returning the buffer itself.
    pub fn finish_vec(mut self) -> Vec<u8> {
        assert!(self.record_count > 0, "an empty batch cannot be finished");
        let header = BatchHeader {
            base_offset: 0,
            term: 0,
            raft_index: 0,
            base_hlc: 0,
            batch_len: self.buf.len() as u32,
            attributes: self.attributes,
            crc: 0,
            record_count: self.record_count,
            base_timestamp_ms: self.base_timestamp_ms,
            max_timestamp_ms: self.max_timestamp_ms,
            producer_id: self.producer_id,
            base_sequence: self.base_sequence,
            compacted_span: 0,
        };
        header.encode(&mut self.buf[..BATCH_HEADER_LEN]);
        compute_and_store_crc(&mut self.buf);
        self.buf
    }
}

/// Bytes of a record after its length field.
fn record_len(key: Option<&[u8]>, value: Option<&[u8]>, headers: &[(&str, &[u8])]) -> usize {
    let headers_len: usize = headers.iter().map(|(n, v)| 2 + n.len() + 4 + v.len()).sum();
    4 + 4 + 4 + key.map_or(0, <[u8]>::len) + 4 + value.map_or(0, <[u8]>::len) + 2 + headers_len
}
