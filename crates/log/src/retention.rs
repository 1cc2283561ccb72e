//! Removing the beginning of the log: `purge_before` (explicit, e.g. after a
//! snapshot or a delete-records request) and retention by age and size.
//! Only whole segments are deleted, oldest first, never the active one.
//!
//! The start offset is persisted before any segment is deleted, so a crash
//! in between never serves purged records; recovery finishes the deletion.

use citystream_record::BatchHeader;

use crate::LogError;
use crate::log_start::LogStart;
use crate::segment::Segment;
use crate::{FsyncPolicy, LogConfig, PartitionLog};

impl PartitionLog {
    pub(crate) fn purge_before_offset(&mut self, offset: u64) -> Result<(), LogError> {
        let start = self.log_start.start_offset;
        let end = self.next_offset().0;
        if offset > end {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                start,
                end,
            });
        }
        if offset <= start {
            return Ok(());
        }
        // The term and Raft index of the batch holding the last record
        // below the new start, reported if no batch is left.
        let floor = self.locate(offset - 1)?.1.header;
        if offset == end && !self.active().is_empty() {
            // Everything goes: start a fresh segment so the old active one
            // can be deleted too.
            self.roll()?;
        }
        if self.config.fsync != FsyncPolicy::Never {
            // Makes what is kept durable before the start moves past it, so a
            // crash cannot leave a start offset beyond the surviving end.
            self.sync()?;
        }
        self.clear_read_hint();
        self.write_log_start(LogStart {
            start_offset: offset,
            floor_term: floor.term,
            floor_raft_index: floor.raft_index,
            ..self.log_start
        })?;
        let purged = self
            .segments
            .iter()
            .take(self.segments.len() - 1)
            .take_while(|s| s.next_offset() <= offset)
            .count();
        self.delete_oldest(purged)?;
        self.check_invariants();
        Ok(())
    }

    /// The compaction point at `cutoff_ms` (decision 0017 §6): the last
    /// batch of the oldest closed segments whose newest record is at or
    /// before `cutoff_ms`, if that is past the clean point (there is
    /// something new to compact) and at least `dirty_ratio_min_percent` of
    /// those segments' bytes are past it. Never in the active segment.
    pub(crate) fn compaction_point_at(
        &self,
        cutoff_ms: i64,
        dirty_ratio_min_percent: u8,
    ) -> Option<BatchHeader> {
        let closed = &self.segments[..self.segments.len() - 1];
        let old_enough = closed
            .iter()
            .take_while(|s| s.max_timestamp_ms() <= cutoff_ms)
            .count();
        let candidates = &closed[..old_enough];
        let last = candidates.iter().rev().find_map(Segment::last_batch)?;
        let clean_end = self
            .log_start
            .clean_end_offset
            .max(self.log_start.start_offset);
        if last.next_offset() <= clean_end {
            return None;
        }
        // The share of the bytes a pass would rewrite that is past the
        // clean point (a segment straddling it counts as dirty).
        let total: u64 = candidates.iter().map(Segment::size_bytes).sum();
        let dirty: u64 = candidates
            .iter()
            .filter(|s| s.next_offset() > clean_end)
            .map(Segment::size_bytes)
            .sum();
        (dirty * 100 >= u64::from(dirty_ratio_min_percent) * total).then_some(last)
    }

    /// How many of the oldest segments age and size retention would
    /// delete at `now_ms`. Never the active one.
    fn expired_segments(&self, now_ms: i64) -> usize {
        let mut size_bytes = self.size_bytes();
        let mut deleted = 0;
        // Ends: each step counts a segment, and the active one is never
        // a candidate.
        while deleted + 1 < self.segments.len() {
            let oldest = &self.segments[deleted];
            let expired = is_expired(&self.config, oldest.max_timestamp_ms(), now_ms);
            let oversized = self
                .config
                .retention_bytes
                .is_some_and(|max| size_bytes > max);
            if !expired && !oversized {
                break;
            }
            size_bytes -= oldest.size_bytes();
            deleted += 1;
        }
        deleted
    }

    pub(crate) fn retention_point_at(&self, now_ms: i64) -> Option<BatchHeader> {
        let expired = self.expired_segments(now_ms);
        let last = self.segments[..expired]
            .iter()
            .rev()
            .find_map(Segment::last_batch)?;
        (last.next_offset() > self.log_start.start_offset).then_some(last)
    }

    pub(crate) fn apply_retention_at(&mut self, now_ms: i64) -> Result<usize, LogError> {
        let deleted = self.expired_segments(now_ms);
        if deleted == 0 {
            return Ok(0);
        }
        self.clear_read_hint();
        let start_offset = self.segments[deleted]
            .base_offset()
            .max(self.log_start.start_offset);
        // The batch before the new start ends the last deleted segment
        // (only the active segment can be empty), unless a purge had
        // already moved the start further and recorded its floor.
        let floor = match self.segments[deleted - 1].last_batch() {
            Some(last) if start_offset > self.log_start.start_offset => LogStart {
                start_offset,
                floor_term: last.term,
                floor_raft_index: last.raft_index,
                ..self.log_start
            },
            _ => LogStart {
                start_offset,
                ..self.log_start
            },
        };
        // Persisted first, like a purge, and so the floor term and Raft
        // index survive if no batch is left.
        self.write_log_start(floor)?;
        self.delete_oldest(deleted)?;
        self.check_invariants();
        tracing::info!(deleted, start_offset, "retention deleted segments");
        Ok(deleted)
    }

    fn delete_oldest(&mut self, count: usize) -> Result<(), LogError> {
        for segment in self.segments.drain(..count) {
            segment.delete(&*self.storage)?;
        }
        Ok(())
    }
}

/// Whether a segment whose newest record is `max_timestamp_ms` is past the
/// age limit at `now_ms`.
fn is_expired(config: &LogConfig, max_timestamp_ms: i64, now_ms: i64) -> bool {
    config.retention_ms.is_some_and(|retention_ms| {
        let retention_ms = i64::try_from(retention_ms).unwrap_or(i64::MAX);
        max_timestamp_ms < now_ms.saturating_sub(retention_ms)
    })
}
