//! Reading batches: a validated [`RecordBatch`], iteration over its records,
//! and splitting a buffer of concatenated batches (a fetch response, a
//! segment file range) into batches.

use bytes::Bytes;

use crate::BatchError;
use crate::builder::NO_KEY;
use crate::header::{BATCH_HEADER_LEN, BatchHeader, u16_at, u32_at};

/// A batch whose header, CRC and record framing have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    header: BatchHeader,
    bytes: Bytes,
}

impl RecordBatch {
    /// Validates `bytes` as exactly one batch: header, length, CRC, and that
    /// the records fill the batch exactly.
    pub fn from_bytes(bytes: Bytes) -> Result<RecordBatch, BatchError> {
        let header = BatchHeader::decode(&bytes)?;
        if bytes.len() != header.batch_len as usize {
            return Err(BatchError::BadLength {
                batch_len: header.batch_len,
            });
        }
        header.verify_crc(&bytes)?;
        if header.record_count == 0 {
            return Err(BatchError::Empty);
        }
        check_records(&header, &bytes)?;
        Ok(RecordBatch { header, bytes })
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
}

/// One record as read from a batch; borrows the batch's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub offset: u64,
    pub timestamp_ms: i64,
    /// Hybrid logical clock: `base_hlc` of the batch plus the record's
    /// index in it (0 plus the index in a batch no leader stamped yet).
    pub hlc: u64,
    pub key: Option<&'a [u8]>,
    pub value: &'a [u8],
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
        let (record, rest) = parse_record(self.header, self.rest, self.index)
            .expect("records were validated when the batch was built");
        self.rest = rest;
        self.index += 1;
        Some(record)
    }
}

fn check_records(header: &BatchHeader, bytes: &[u8]) -> Result<(), BatchError> {
    let mut rest = &bytes[BATCH_HEADER_LEN..];
    for index in 0..header.record_count {
        rest = parse_record(header, rest, index)?.1;
    }
    if !rest.is_empty() {
        return Err(BatchError::BadRecord {
            index: header.record_count,
            reason: "bytes after the last record",
        });
    }
    Ok(())
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

fn parse_record<'a>(
    header: &BatchHeader,
    bytes: &'a [u8],
    index: u32,
) -> Result<(Record<'a>, &'a [u8]), BatchError> {
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
    let value_len = cur.u32("value length truncated")? as usize;
    let value = cur.take(value_len, "value truncated")?;
    let header_count = cur.u16("header count truncated")?;
    let mut headers = Vec::with_capacity(usize::from(header_count));
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
        headers.push((name, cur.take(value_len, "header value truncated")?));
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
        hlc: header.base_hlc.wrapping_add(u64::from(index)),
        key,
        value,
        headers,
    };
    Ok((record, outer.bytes))
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
