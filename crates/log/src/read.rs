//! The read path: find the batch containing an offset (binary search over
//! segments, then the sparse index, then headers forward), read up to
//! `max_bytes` from there with one read, trim to whole batches and check
//! each batch's CRC again before serving it. Also the record walk of
//! `offset_for_timestamp`, which passes over batches compaction emptied
//! of the records that reached the time.
//!
//! A one-entry hint remembers where the last read ended so a consumer
//! reading sequentially skips the search. Every change other than an append
//! clears it.

use std::ops::ControlFlow;

use bytes::Bytes;
use citystream_record::{BATCH_HEADER_LEN, BatchHeader};

use crate::segment::{Located, Segment};
use crate::{LogError, Offset, PartitionLog, ReadResult};

/// Where a read ended: the batch with base offset `offset` starts at
/// `position` in the segment with base `segment_base`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadHint {
    offset: u64,
    segment_base: u64,
    position: u64,
}

impl PartitionLog {
    /// The first offset `>= from` of the first batch whose max timestamp
    /// reaches `timestamp_ms`, through the time indexes.
    pub(crate) fn first_batch_reaching(
        &self,
        timestamp_ms: i64,
        from: u64,
    ) -> Result<Option<u64>, LogError> {
        for segment in self.segments.iter().filter(|s| s.next_offset() > from) {
            if let Some(offset) = segment.offset_for_timestamp(timestamp_ms, from)? {
                return Ok(Some(offset));
            }
        }
        Ok(None)
    }

    /// The indexes find the batch whose max timestamp reaches `timestamp_ms`;
    /// this walks that batch's records (from `batch_offset` on) to the first
    /// one that does. Also returns the batch's end.
    pub(crate) fn first_record_at_or_after(
        &self,
        batch_offset: Offset,
        timestamp_ms: i64,
    ) -> Result<(Option<Offset>, u64), LogError> {
        let read = self.read(batch_offset, 1)?;
        let batch = citystream_record::BatchIter::new(read.bytes)
            .next()
            .ok_or_else(|| LogError::Corrupt(format!("no batch at offset {batch_offset}")))??;
        let record = batch
            .records()
            .find(|record| record.offset >= batch_offset.0 && record.timestamp_ms >= timestamp_ms);
        Ok((
            record.map(|record| Offset(record.offset)),
            batch.header().next_offset(),
        ))
    }

    pub(crate) fn read_batches(&self, from: u64, max_bytes: usize) -> Result<ReadResult, LogError> {
        let next_offset = self.check_readable(from)?;
        if from == next_offset {
            return Ok(ReadResult {
                bytes: Bytes::new(),
                next_offset: Offset(next_offset),
            });
        }
        let (index, position, base_offset) = match self.hinted(from) {
            Some(found) => found,
            None => {
                let (index, located) = self.locate(from)?;
                (index, located.position, located.header.base_offset)
            }
        };
        let segment = &self.segments[index];
        let (bytes, end_offset) = read_whole_batches(segment, position, base_offset, max_bytes)?;
        *self.read_hint.lock() = Some(ReadHint {
            offset: end_offset,
            segment_base: segment.base_offset(),
            position: position + bytes.len() as u64,
        });
        Ok(ReadResult {
            bytes,
            next_offset: Offset(next_offset),
        })
    }

    pub(crate) fn read_headers(
        &self,
        from: u64,
        count_max: usize,
    ) -> Result<Vec<BatchHeader>, LogError> {
        let next_offset = self.check_readable(from)?;
        let mut headers = Vec::new();
        if from == next_offset || count_max == 0 {
            return Ok(headers);
        }
        let (first_index, first) = self.locate(from)?;
        let mut position = first.position;
        for segment in &self.segments[first_index..] {
            segment.walk(position, |_, header| {
                headers.push(*header);
                if headers.len() == count_max {
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            })?;
            if headers.len() == count_max {
                break;
            }
            position = 0;
        }
        Ok(headers)
    }

    /// The log end offset, or `OffsetOutOfRange` if `from` is outside
    /// `[start, end]`.
    fn check_readable(&self, from: u64) -> Result<u64, LogError> {
        let start = self.log_start.start_offset;
        let end = self.next_offset().0;
        if from < start || from > end {
            return Err(LogError::OffsetOutOfRange {
                requested: from,
                start,
                end,
            });
        }
        Ok(end)
    }

    /// The segment index and batch containing `offset` (`start <= offset <
    /// next`).
    pub(crate) fn locate(&self, offset: u64) -> Result<(usize, Located), LogError> {
        let index = self
            .segments
            .partition_point(|s| s.base_offset() <= offset)
            .checked_sub(1)
            .expect("the first segment starts at or below the start offset");
        Ok((index, self.segments[index].locate(offset)?))
    }

    /// Segment index and position of the batch starting at `from` if the
    /// last read ended exactly there (and that segment still holds bytes
    /// there).
    fn hinted(&self, from: u64) -> Option<(usize, u64, u64)> {
        let hint = (*self.read_hint.lock())?;
        if hint.offset != from {
            return None;
        }
        let index = self
            .segments
            .binary_search_by_key(&hint.segment_base, Segment::base_offset)
            .ok()?;
        (hint.position < self.segments[index].size_bytes()).then_some((index, hint.position, from))
    }

    /// Forgets the read hint (after truncation, purge, retention, reset).
    pub(crate) fn clear_read_hint(&mut self) {
        *self.read_hint.get_mut() = None;
    }
}

/// Reads the batch at `position` (whose base offset must be `base_offset`)
/// and the whole batches after it in the same segment that fit in
/// `max_bytes`, checking each one's CRC and offsets: usually one read.
/// Returns the bytes and the offset after them.
fn read_whole_batches(
    segment: &Segment,
    position: u64,
    base_offset: u64,
    max_bytes: usize,
) -> Result<(Bytes, u64), LogError> {
    let remaining = segment.size_bytes() - position;
    let len = (max_bytes.max(BATCH_HEADER_LEN) as u64).min(remaining);
    let mut buf = vec![0u8; usize::try_from(len).expect("a read fits in memory")];
    segment.read_at(position, &mut buf)?;
    if let Ok(first) = BatchHeader::decode(&buf) {
        let first_len = u64::from(first.batch_len);
        if first_len > len && first_len <= remaining {
            // The first batch alone is larger than `max_bytes`: serve it whole.
            let already = buf.len();
            buf.resize(first.batch_len as usize, 0);
            segment.read_at(position + already as u64, &mut buf[already..])?;
        }
    }
    let mut end = 0;
    let mut expected = base_offset;
    while let Some(header) = next_whole_batch(&buf[end..], expected) {
        end += header.batch_len as usize;
        expected = header.next_offset();
    }
    if end == 0 {
        return Err(LogError::Corrupt(format!(
            "{}: batch at byte {position} fails its check on read",
            segment.log_path().display(),
        )));
    }
    buf.truncate(end);
    Ok((Bytes::from(buf), expected))
}

/// The header of the batch at the start of `bytes` if it is whole, sound
/// and starts at `expected`.
fn next_whole_batch(bytes: &[u8], expected: u64) -> Option<BatchHeader> {
    let header = BatchHeader::decode(bytes).ok()?;
    let sound = bytes.len() >= header.batch_len as usize
        && header.base_offset == expected
        && header.verify_crc(bytes).is_ok();
    sound.then_some(header)
}
