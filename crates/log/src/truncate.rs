//! Removing the end of the log: `truncate_after` (Raft log repair) and
//! `reset` (a follower installing a snapshot).
//!
//! Crash safety comes from ordering: later segments are deleted newest
//! first and the directory synced before the surviving segment is cut, so a
//! crash leaves a prefix of the old log, never a log with a hole.

use crate::log_start::{self, LogStart};
use crate::segment::{Segment, io_error};
use crate::{FsyncPolicy, LogError, PartitionLog};

impl PartitionLog {
    pub(crate) fn truncate_after_offset(&mut self, offset: u64) -> Result<(), LogError> {
        let start = self.log_start.start_offset;
        let end = self.next_offset().0;
        let cut = offset.saturating_add(1);
        if cut < start || cut > end {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                start,
                end,
            });
        }
        if cut == end {
            return Ok(());
        }
        // The batch holding `cut` goes, even if it also holds `offset`.
        let (index, located) = self.locate(cut)?;
        self.clear_read_hint();
        self.epoch = crate::next_epoch();
        self.delete_segments_after(index)?;
        let segment = self.active_mut();
        segment.truncate(located.position, located.header.base_offset)?;
        if self.config.fsync != FsyncPolicy::Never {
            // Durable on return: what is kept, and the cut itself.
            self.sync()?;
        }
        let next_offset = located.header.base_offset;
        let mut log_start = LogStart {
            // What is left below the cut is still compacted.
            clean_end_offset: self.log_start.clean_end_offset.min(next_offset),
            ..self.log_start
        };
        if next_offset < self.log_start.start_offset {
            // The cut batch straddled the start offset: the log is now empty
            // and starts where that batch started, and the next append
            // takes that batch's Raft index.
            log_start.start_offset = next_offset;
            log_start.floor_raft_index = located.header.raft_index - 1;
        }
        if log_start != self.log_start {
            self.write_log_start(log_start)?;
        }
        self.derive_last();
        self.check_invariants();
        tracing::info!(offset, next_offset, "truncated the log");
        Ok(())
    }

    pub(crate) fn reset_to(
        &mut self,
        next_offset: u64,
        term: u64,
        next_raft_index: u64,
    ) -> Result<(), LogError> {
        assert!(next_raft_index > 0, "Raft indexes start at 1");
        self.clear_read_hint();
        self.epoch = crate::next_epoch();
        // Oldest first: a crash part-way leaves a suffix, still a valid log.
        for segment in self.segments.drain(..) {
            segment.delete(&*self.storage)?;
        }
        self.sync_dir()?;
        self.write_log_start(LogStart {
            start_offset: next_offset,
            floor_term: term,
            floor_raft_index: next_raft_index - 1,
            clean_end_offset: next_offset,
            clean_reference_ms: i64::MIN,
        })?;
        let mut segment = Segment::create(&*self.storage, next_offset)?;
        segment.sync()?;
        self.segments.push(segment);
        self.derive_last();
        self.check_invariants();
        tracing::info!(next_offset, term, next_raft_index, "reset the log");
        Ok(())
    }

    /// Deletes every segment after `index`, newest first.
    fn delete_segments_after(&mut self, index: usize) -> Result<(), LogError> {
        if self.segments.len() <= index + 1 {
            return Ok(());
        }
        while self.segments.len() > index + 1 {
            let segment = self.segments.pop().expect("more than index + 1 segments");
            segment.delete(&*self.storage)?;
        }
        self.sync_dir()
    }

    pub(crate) fn sync_dir(&self) -> Result<(), LogError> {
        self.storage
            .sync_dir()
            .map_err(io_error(&self.storage.location("")))
    }

    pub(crate) fn write_log_start(&mut self, log_start: LogStart) -> Result<(), LogError> {
        log_start::write(&*self.storage, log_start)?;
        self.log_start = log_start;
        Ok(())
    }
}
