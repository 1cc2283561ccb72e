//! The append path, leader and follower: check the batch (header, length,
//! CRC; not the records, which the broker may check upstream), check term,
//! offsets and Raft index (the leader assigns offset, term and index, a
//! follower's batch must continue the log), roll the segment if needed,
//! write once, fsync per policy. Also rolling by age
//! ([`PartitionLog::roll_if_older`]), which the owner drives with its clock.
//!
//! Per-batch cost is one CRC pass, one header rewrite and one write; there
//! is no per-record work.

use citystream_record::{BatchError, BatchHeader, set_base_offset, set_raft_index, set_term};

use crate::segment::Segment;
use crate::{AppendInfo, FsyncPolicy, LogError, PartitionLog, Term};

impl PartitionLog {
    pub(crate) fn append_leader(
        &mut self,
        batch: &mut [u8],
        term: Term,
    ) -> Result<AppendInfo, LogError> {
        let header = check_batch(batch)?;
        if term.0 < self.last_term {
            return Err(LogError::TermWentBackwards {
                batch_term: term.0,
                last_term: self.last_term,
            });
        }
        let base_offset = self.next_offset().0;
        let raft_index = self.next_raft_index();
        set_base_offset(batch, base_offset);
        set_term(batch, term.0);
        set_raft_index(batch, raft_index);
        let header = BatchHeader {
            base_offset,
            term: term.0,
            raft_index,
            ..header
        };
        self.write_batch(batch, &header)
    }

    pub(crate) fn append_follower(&mut self, batch: &[u8]) -> Result<AppendInfo, LogError> {
        let header = check_batch(batch)?;
        let expected = self.next_offset().0;
        if header.base_offset != expected {
            return Err(LogError::NonContiguous {
                expected,
                found: header.base_offset,
            });
        }
        let expected = self.next_raft_index();
        if header.raft_index != expected {
            return Err(LogError::RaftIndexNonContiguous {
                expected,
                found: header.raft_index,
            });
        }
        if header.term < self.last_term {
            return Err(LogError::TermWentBackwards {
                batch_term: header.term,
                last_term: self.last_term,
            });
        }
        self.write_batch(batch, &header)
    }

    fn next_raft_index(&self) -> u64 {
        self.last_raft_index
            .checked_add(1)
            .expect("Raft indexes never reach u64::MAX")
    }

    fn write_batch(&mut self, batch: &[u8], header: &BatchHeader) -> Result<AppendInfo, LogError> {
        self.roll_if_full(header)?;
        let interval_bytes = self.config.index_interval_bytes;
        let active = self.active_mut();
        active.append(batch, header, interval_bytes)?;
        if self.config.fsync == FsyncPolicy::Always {
            self.active_mut().sync()?;
        }
        self.last_term = header.term;
        self.last_raft_index = header.raft_index;
        Ok(AppendInfo {
            base_offset: crate::Offset(header.base_offset),
            last_offset: crate::Offset(header.last_offset()),
            max_timestamp_ms: header.max_timestamp_ms,
            raft_index: header.raft_index,
        })
    }

    /// Starts a new segment if `header`'s batch would overflow the active
    /// one (size, or relative offsets beyond `u32`). An empty segment takes
    /// any batch, so a batch larger than a segment still fits somewhere.
    fn roll_if_full(&mut self, header: &BatchHeader) -> Result<(), LogError> {
        let active = self.active();
        if active.is_empty() {
            return Ok(());
        }
        let size_after = active.size_bytes() + u64::from(header.batch_len);
        let relative_end = header.next_offset() - active.base_offset();
        if size_after > self.config.segment_bytes_max || relative_end > u64::from(u32::MAX) {
            self.roll()?;
        }
        Ok(())
    }

    pub(crate) fn roll_if_older_at(&mut self, now_ms: i64) -> Result<bool, LogError> {
        let Some(roll_ms) = self.config.segment_roll_ms else {
            return Ok(false);
        };
        let active = self.active();
        if active.is_empty() {
            return Ok(false);
        }
        let first = active.header_at_position(0)?;
        let roll_ms = i64::try_from(roll_ms).unwrap_or(i64::MAX);
        if now_ms.saturating_sub(first.max_timestamp_ms) <= roll_ms {
            return Ok(false);
        }
        self.roll()?;
        tracing::debug!(
            first_timestamp_ms = first.max_timestamp_ms,
            now_ms,
            "rolled an old active segment"
        );
        Ok(true)
    }

    /// Seals the active segment and starts an empty one at the log end.
    pub(crate) fn roll(&mut self) -> Result<(), LogError> {
        let next_offset = self.next_offset().0;
        self.active_mut().flush_indexes()?;
        let segment = Segment::create(&*self.storage, next_offset)?;
        tracing::debug!(segment = next_offset, "rolled to a new segment");
        self.segments.push(segment);
        Ok(())
    }
}

/// Checks one encoded batch: header fields, exact length, CRC, records > 0.
pub(crate) fn check_batch(batch: &[u8]) -> Result<BatchHeader, LogError> {
    let header = BatchHeader::decode(batch)?;
    let batch_len = header.batch_len as usize;
    if batch.len() < batch_len {
        return Err(BatchError::Truncated {
            needed: batch_len,
            available: batch.len(),
        }
        .into());
    }
    if batch.len() > batch_len {
        return Err(BatchError::BadLength {
            batch_len: header.batch_len,
        }
        .into());
    }
    header.verify_crc(batch)?;
    if header.record_count == 0 {
        return Err(BatchError::Empty.into());
    }
    Ok(header)
}
