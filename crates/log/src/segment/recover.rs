//! Recovering one segment on open: check the batches after the last
//! usable index entry (all of them if there is none, or if the first batch
//! does not continue the log's Raft indexes), rebuild index entries on the
//! way, and cut the file at the first bad batch. Which segments to recover
//! and what a cut means for later segments is `recovery`'s.

use std::ops::ControlFlow;

use citystream_record::{BATCH_HEADER_LEN, BatchHeader};

use super::{LOG_SUFFIX, Segment, io_error, open_file};
use crate::LogError;
use crate::index::{IndexFile, OffsetEntry};
use crate::scan::{CheckedScan, Expected, raft_index_follows, scan_checked, walk_headers};
use crate::storage::Storage;

impl Segment {
    /// Opens an existing segment, checks every batch after its last index
    /// entry (or every batch, if the index is unusable, or if the first
    /// batch does not carry the Raft index `expected` asks for) and cuts the
    /// file at the first bad one. Returns why it cut, if it did.
    pub fn recover(
        storage: &dyn Storage,
        expected: Expected,
        interval_bytes: u32,
    ) -> Result<(Segment, Option<String>), LogError> {
        let base_offset = expected.base_offset;
        let (log, log_path) = open_file(storage, base_offset, LOG_SUFFIX)?;
        let file_len = log.len_bytes().map_err(io_error(&log_path))?;
        let in_file = move |e: &OffsetEntry| e.position > 0 && u64::from(e.position) < file_len;
        let mut segment = Segment::with_indexes(
            storage,
            base_offset,
            log,
            log_path,
            |f| IndexFile::load(f, in_file),
            |f| IndexFile::load(f, |_| true),
        )?;
        let first = segment.header_at(0, file_len);
        let first_follows = first.is_some_and(|h| {
            expected
                .raft_index
                .is_none_or(|i| raft_index_follows(&h, i.wrapping_sub(1)))
        });
        let mut resume = match first {
            // Resume only past a first batch that continues the log.
            Some(_) if first_follows => segment.resume_point(expected, file_len)?,
            _ => segment.forget_indexes(expected)?,
        };
        loop {
            let (scan, last) = segment.scan_from(resume, file_len, interval_bytes)?;
            // A bad batch right at the resume point hides which batch came
            // before it: start over from the beginning of the file.
            if scan.end_position == resume.0 && resume.0 > 0 {
                resume = segment.forget_indexes(expected)?;
                continue;
            }
            segment.first_raft_index = first.map(|h| h.raft_index);
            return segment.finish_recovery(scan, last, file_len);
        }
    }

    /// The header at `position` if one decodes there, before `file_len`.
    fn header_at(&self, position: u64, file_len: u64) -> Option<BatchHeader> {
        let mut head = [0u8; BATCH_HEADER_LEN];
        let fits = position + BATCH_HEADER_LEN as u64 <= file_len;
        let read = fits && self.log.read_at(position, &mut head).is_ok();
        read.then(|| BatchHeader::decode(&head).ok()).flatten()
    }

    fn scan_from(
        &mut self,
        (position, expected): (u64, Expected),
        file_len: u64,
        interval_bytes: u32,
    ) -> Result<(CheckedScan, Option<BatchHeader>), LogError> {
        let base_offset = self.base_offset;
        let indexer = &mut self.indexer;
        let mut last = None;
        let scan = scan_checked(
            &*self.log,
            position,
            file_len,
            expected,
            |position, header| {
                indexer.observe(base_offset, position, header, interval_bytes);
                last = Some(*header);
            },
        )
        .map_err(io_error(&self.log_path))?;
        Ok((scan, last))
    }

    /// Where the checked scan starts: the last offset index entry if the
    /// batch header there agrees with it, else the start of the file (and
    /// the indexes are rebuilt). The batches before the entry are trusted
    /// (they were checked when written or at an earlier open); the header
    /// at the entry must carry the entry's offset, and a Raft index that
    /// follows the batches since the entry before (whose headers are walked:
    /// the index sits outside the CRC).
    fn resume_point(
        &mut self,
        expected: Expected,
        file_len: u64,
    ) -> Result<(u64, Expected), LogError> {
        let entries = self.indexer.offsets.entries();
        if let Some(entry) = entries.last().copied() {
            let base_offset = self.base_offset + u64::from(entry.relative_offset);
            let position = u64::from(entry.position);
            let previous = entries
                .len()
                .checked_sub(2)
                .map_or(0, |i| entries[i].position);
            let agreeing = self
                .header_at(position, file_len)
                .filter(|h| h.base_offset == base_offset)
                .filter(|_| self.raft_indexes_dense(u64::from(previous), position, file_len));
            if let Some(header) = agreeing {
                let indexer = &mut self.indexer;
                let keep = indexer
                    .times
                    .entries()
                    .partition_point(|e| e.relative_offset <= entry.relative_offset);
                indexer
                    .times
                    .truncate(keep)
                    .map_err(io_error(&self.log_path))?;
                indexer.max_timestamp_ms =
                    indexer.times.last().map_or(i64::MIN, |e| e.timestamp_ms);
                indexer.last_indexed_position = position;
                return Ok((
                    position,
                    Expected {
                        base_offset,
                        raft_index: Some(header.raft_index),
                        ..expected
                    },
                ));
            }
        }
        self.forget_indexes(expected)
    }

    /// Whether the Raft indexes of the batches from the one at `from` to the
    /// one at `to` are dense (headers only; the one at `from` is trusted).
    fn raft_indexes_dense(&self, from: u64, to: u64, file_len: u64) -> bool {
        let (mut previous, mut reached) = (None::<u64>, false);
        let walked = walk_headers(&*self.log, from, file_len, |position, header| {
            if previous.is_some_and(|p| !raft_index_follows(header, p)) {
                return ControlFlow::Break(());
            }
            previous = Some(header.raft_index);
            reached = position == to;
            if position >= to {
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
        walked.is_ok() && reached
    }

    /// Drops every index entry so a scan from position 0 rebuilds them.
    fn forget_indexes(&mut self, expected: Expected) -> Result<(u64, Expected), LogError> {
        let indexer = &mut self.indexer;
        indexer
            .offsets
            .truncate(0)
            .map_err(io_error(&self.log_path))?;
        indexer
            .times
            .truncate(0)
            .map_err(io_error(&self.log_path))?;
        indexer.last_indexed_position = 0;
        indexer.max_timestamp_ms = i64::MIN;
        Ok((0, expected))
    }

    fn finish_recovery(
        mut self,
        scan: CheckedScan,
        last: Option<BatchHeader>,
        file_len: u64,
    ) -> Result<(Segment, Option<String>), LogError> {
        let path = self.log_path.clone();
        if scan.end_position < file_len {
            self.log
                .truncate(scan.end_position)
                .map_err(io_error(&path))?;
            self.log.sync().map_err(io_error(&path))?;
        }
        self.size_bytes = scan.end_position;
        // Bytes written before the open may sit unsynced in a cache: the
        // next `sync` must cover them too.
        if self.size_bytes > 0 {
            self.writes += 1;
        }
        if let Some(header) = last {
            self.next_offset = header.next_offset();
            self.last_batch = Some(header);
        }
        if self.size_bytes == 0 {
            self.first_raft_index = None;
        }
        self.indexer.flush().map_err(io_error(&path))?;
        Ok((self, scan.stop_reason))
    }
}
