//! Reading batches: a validated [`RecordBatch`], iteration over its records,
//! and splitting a buffer of concatenated batches (a fetch response, a
//! segment file range) into batches. Validation here covers the records
//! (framing, offset deltas against the span); the header's own checks are
//! in `header.rs`.

use bytes::Bytes;

use crate::BatchError;
use crate::builder::{NO_KEY, NO_VALUE};
use crate::header::{BATCH_HEADER_LEN, BatchHeader, u16_at, u32_at};

/// A batch whose header, CRC and record framing have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    header: BatchHeader,
    bytes: Bytes,
    /// Some record has a null value (a tombstone).
    has_tombstones: bool,
}

impl RecordBatch {
    /// Validates `bytes` as exactly one batch: header, length, CRC, that
    /// the records fill the batch exactly, and that their offset deltas
    /// strictly increase below the batch's span (so they are `0, 1, 2, …`
    /// in an uncompacted batch). Only a `GAP` batch may hold no records.
    pub fn from_bytes(bytes: Bytes) -> Result<RecordBatch, BatchError> {
        let header = BatchHeader::decode(&bytes)?;
        if bytes.len() != header.batch_len as usize {
            return Err(BatchError::BadLength {
                batch_len: header.batch_len,
            });
        }
        header.verify_crc(&bytes)?;
        if header.record_count == 0 && !header.is_gap() {
            return Err(BatchError::Empty);
        }
        let has_tombstones = check_records(&header, &bytes)?;
        Ok(RecordBatch {
            header,
            bytes,
            has_tombstones,
        })
    }

    /// Whether a record has a null value (a tombstone), seen while
    /// validating.
    pub fn has_tombstones(&self) -> bool {
        self.has_tombstones
    }

    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    pub fn records(&self) -> RecordIter<'_> {
        RecordIter {
            header: &self.header,
            rest: &self.bytes[BATCH_HEADER_LEN..],
            index: 0,
        }
    }

    /// The encoded records, each with its length field, in batch order.
    pub(crate) fn encoded_records(&self) -> impl Iterator<Item = &[u8]> {
        let mut rest = &self.bytes[BATCH_HEADER_LEN..];
        (0..self.header.record_count).map(move |_| {
            let len = 4 + u32_at(rest, 0) as usize;
            let (record, tail) = rest.split_at(len);
            rest = tail;
            record
        })
    }
}

/// One record as read from a batch; borrows the batch's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub offset: u64,
    pub timestamp_ms: i64,
    /// Hybrid logical clock: `base_hlc` of the batch plus the record's
    /// offset delta, which is its index in an uncompacted batch (0 plus the
    /// index in a batch no leader stamped yet).
    pub hlc: u64,
    pub key: Option<&'a [u8]>,
    /// `None` is a null value: a tombstone, which log compaction reads as
    /// "delete this key" (distinct from an empty value).
    pub value: Option<&'a [u8]>,
    pub headers: Vec<(&'a str, &'a [u8])>,
}

/// Iterates the records of a validated batch.
pub struct RecordIter<'a> {
    header: &'a BatchHeader,
    rest: &'a [u8],
    index: u32,
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        if self.index >= self.header.record_count {
            return None;
        }
        let (record, _, rest) = parse_record(self.header, self.rest, self.index, Headers::Keep)
            .expect("records were validated when the batch was built");
        self.rest = rest;
        self.index += 1;
        Some(record)
    }
}

/// Checks the framing of every record and that offset deltas strictly
/// increase and stay below the span: a compacted batch keeps a subsequence
/// of its original deltas, an uncompacted one has exactly `0..record_count`.
/// Checks every record; whether one has a null value.
fn check_records(header: &BatchHeader, bytes: &[u8]) -> Result<bool, BatchError> {
    let span = header.offset_count();
    let mut rest = &bytes[BATCH_HEADER_LEN..];
    let mut previous_delta: Option<u32> = None;
    let mut has_tombstones = false;
    for index in 0..header.record_count {
        let (record, offset_delta, tail) = parse_record(header, rest, index, Headers::Check)?;
        has_tombstones |= record.value.is_none();
        if previous_delta.is_some_and(|previous| offset_delta <= previous) {
            return Err(BatchError::BadRecord {
                index,
                reason: "offset delta not above the previous record's",
            });
        }
        if offset_delta >= span {
            return Err(BatchError::BadRecord {
                index,
                reason: "offset delta beyond the batch's span",
            });
        }
        previous_delta = Some(offset_delta);
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(BatchError::BadRecord {
            index: header.record_count,
            reason: "bytes after the last record",
        });
    }
    Ok(has_tombstones)
}

/// Cursor over one record's bytes that reports which field ran short.
struct Cursor<'a> {
    bytes: &'a [u8],
    index: u32,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], BatchError> {
        if self.bytes.len() < n {
            return Err(BatchError::BadRecord {
                index: self.index,
                reason: what,
            });
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, BatchError> {
        Ok(u32_at(self.take(4, what)?, 0))
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, BatchError> {
        Ok(u16_at(self.take(2, what)?, 0))
    }
}

/// What parsing a record does with its headers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Headers {
    /// Checks and returns them.
    Keep,
    /// Checks them only (validating a batch): the record comes back with
    /// none, and nothing is allocated for them.
    Check,
}

/// Parses record `index` from the front of `bytes`; returns it, its offset
/// delta and the bytes after it.
fn parse_record<'a>(
    header: &BatchHeader,
    bytes: &'a [u8],
    index: u32,
    headers_wanted: Headers,
) -> Result<(Record<'a>, u32, &'a [u8]), BatchError> {
    let mut outer = Cursor { bytes, index };
    let len = outer.u32("record length truncated")? as usize;
    let body = outer.take(len, "record longer than the batch")?;
    let mut cur = Cursor { bytes: body, index };
    let delta = cur.u32("timestamp truncated")? as i32;
    let offset_delta = cur.u32("offset delta truncated")?;
    let key = match cur.u32("key length truncated")? {
        NO_KEY => None,
        key_len => Some(cur.take(key_len as usize, "key truncated")?),
    };
    let value = match cur.u32("value length truncated")? {
        NO_VALUE => None,
        value_len => Some(cur.take(value_len as usize, "value truncated")?),
    };
    let header_count = cur.u16("header count truncated")?;
    let mut headers = match headers_wanted {
        Headers::Keep => Vec::with_capacity(usize::from(header_count)),
        Headers::Check => Vec::new(),
    };
    for _ in 0..header_count {
        let name_len = usize::from(cur.u16("header name length truncated")?);
        let name =
            std::str::from_utf8(cur.take(name_len, "header name truncated")?).map_err(|_| {
                BatchError::BadRecord {
                    index,
                    reason: "header name is not UTF-8",
                }
            })?;
        let value_len = cur.u32("header value length truncated")? as usize;
        let value = cur.take(value_len, "header value truncated")?;
        if headers_wanted == Headers::Keep {
            headers.push((name, value));
        }
    }
    if !cur.bytes.is_empty() {
        return Err(BatchError::BadRecord {
            index,
            reason: "bytes after the record's headers",
        });
    }
    let record = Record {
        offset: header.base_offset + u64::from(offset_delta),
        timestamp_ms: header.base_timestamp_ms.wrapping_add(i64::from(delta)),
        hlc: header.base_hlc.wrapping_add(u64::from(offset_delta)),
        key,
        value,
        headers,
    };
    Ok((record, offset_delta, outer.bytes))
}

/// Splits concatenated batches. Yields an error for the first batch that is
/// invalid and stops there; a trailing partial batch (as a size-limited fetch
/// may end with) is reported as [`BatchError::Truncated`].
pub struct BatchIter {
    rest: Bytes,
    failed: bool,
}

impl BatchIter {
    pub fn new(bytes: Bytes) -> BatchIter {
        BatchIter {
            rest: bytes,
            failed: false,
        }
    }
}

impl Iterator for BatchIter {
    type Item = Result<RecordBatch, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        let result = BatchHeader::decode(&self.rest).and_then(|header| {
            let len = header.batch_len as usize;
            if self.rest.len() < len {
                return Err(BatchError::Truncated {
                    needed: len,
                    available: self.rest.len(),
                });
            }
            RecordBatch::from_bytes(self.rest.split_to(len))
        });
        self.failed = result.is_err();
        Some(result)
    }
}
