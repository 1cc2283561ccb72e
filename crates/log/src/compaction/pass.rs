//! One compaction pass over a standalone log, [`PartitionLog::compact`]:
//! plan over the closed segments below the horizon (pass 1 feeds every
//! batch to the planner), rewrite each segment that changes into
//! `<base>.log.cleaned` (pass 2, each input CRC checked as it is read, the
//! output fsynced), then swap them all in with one manifest and reopen the
//! rewritten segments with [`Segment::recover`], which rebuilds their
//! indexes and checks every batch a second time.
//!
//! Not done yet (decision 0017 §6): the split into plan (read lock), run
//! (no lock) and commit (write lock) with the re-check of the inputs;
//! grouping small segments into one output; the persisted clean point
//! (`LogStart` v2; every pass maps from the log start); a bounded read
//! buffer (a segment is read whole, so memory is one segment).

use bytes::Bytes;
use citystream_record::{BatchIter, RecordBatch};

use super::plan::Planner;
use super::rewrite::rewrite_batches;
use super::swap::{self, CLEANED_SUFFIX, SwapManifest};
use super::{CompactionParams, CompactionSummary};
use crate::scan::Expected;
use crate::segment::{INDEX_SUFFIX, LOG_SUFFIX, Segment, TIME_INDEX_SUFFIX, file_name, io_error};
use crate::{LogError, Offset, PartitionLog};

impl PartitionLog {
    pub(crate) fn compact_below(
        &mut self,
        horizon: Offset,
        params: &CompactionParams,
    ) -> Result<CompactionSummary, LogError> {
        let closed = self.compactable_segments(horizon.0);
        let Some(last) = closed.checked_sub(1) else {
            return Ok(CompactionSummary::nothing(self.segments[0].base_offset()));
        };
        let mut planner = Planner::new(0, self.segments[last].next_offset(), params);
        for segment in &self.segments[..closed] {
            for batch in read_segment_batches(segment)? {
                planner.observe(&batch);
            }
        }
        let mut rewritten = Vec::new();
        let mut bytes_removed = 0;
        for (index, segment) in self.segments[..closed].iter().enumerate() {
            if segment.base_offset() >= planner.horizon_offset() {
                break;
            }
            let input = read_segment_batches(segment)?;
            let output = rewrite_batches(&input, &planner);
            if output.iter().eq(input.iter().map(RecordBatch::bytes)) {
                continue;
            }
            let output_bytes = write_cleaned(&*self.storage, segment.base_offset(), &output)?;
            bytes_removed += segment.size_bytes() - output_bytes;
            rewritten.push(index);
        }
        self.swap_in(&rewritten)?;
        Ok(CompactionSummary {
            horizon: Offset(planner.horizon_offset()),
            segments_rewritten: rewritten.len(),
            bytes_removed,
        })
    }

    /// How many of the oldest segments are closed and end at or below
    /// `horizon_offset` (only the active segment may be empty).
    fn compactable_segments(&self, horizon_offset: u64) -> usize {
        let closed = &self.segments[..self.segments.len() - 1];
        closed
            .iter()
            .take_while(|s| s.next_offset() <= horizon_offset)
            .count()
    }

    /// Swaps the `.cleaned` rewrites of the segments at `indexes` in, then
    /// reopens those segments.
    fn swap_in(&mut self, indexes: &[usize]) -> Result<(), LogError> {
        if indexes.is_empty() {
            return Ok(());
        }
        let mut manifest = SwapManifest::default();
        for &index in indexes {
            let base_offset = self.segments[index].base_offset();
            for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                manifest.deletes.push(file_name(base_offset, suffix));
            }
            let log = file_name(base_offset, LOG_SUFFIX);
            manifest
                .renames
                .push((format!("{log}{CLEANED_SUFFIX}"), log));
        }
        self.clear_read_hint();
        swap::commit(&*self.storage, &manifest)?;
        for &index in indexes {
            self.reopen_segment(index)?;
        }
        self.derive_last();
        self.check_invariants();
        Ok(())
    }

    /// Replaces the segment at `index` by what its files hold now.
    fn reopen_segment(&mut self, index: usize) -> Result<(), LogError> {
        let old = &self.segments[index];
        let previous = index
            .checked_sub(1)
            .and_then(|i| self.segments[i].last_batch());
        let expected = match previous {
            Some(previous) => Expected::after(&previous),
            None => Expected {
                base_offset: old.base_offset(),
                raft_index: None,
                term_min: 0,
            },
        };
        let (segment, cut) =
            Segment::recover(&*self.storage, expected, self.config.index_interval_bytes)?;
        if let Some(reason) = cut {
            return Err(segment.corrupt(format!("a rewritten segment fails recovery: {reason}")));
        }
        assert_eq!(
            (segment.base_offset(), segment.next_offset()),
            (old.base_offset(), old.next_offset()),
            "a rewritten segment covers the same offsets"
        );
        self.segments[index] = segment;
        Ok(())
    }
}

/// Every batch of a closed segment, each checked (CRC, records).
fn read_segment_batches(segment: &Segment) -> Result<Vec<RecordBatch>, LogError> {
    let len = usize::try_from(segment.size_bytes()).expect("a segment fits in memory");
    let mut buf = vec![0u8; len];
    segment.read_at(0, &mut buf)?;
    let batches = BatchIter::new(Bytes::from(buf))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| segment.corrupt(format!("a batch fails its check: {error}")))?;
    let mut expected = segment.base_offset();
    for batch in &batches {
        if batch.header().base_offset != expected {
            return Err(segment.corrupt(format!("no batch at offset {expected}")));
        }
        expected = batch.header().next_offset();
    }
    Ok(batches)
}

/// Writes `batches` to `<base>.log.cleaned` and fsyncs it; returns its size.
fn write_cleaned(
    storage: &dyn crate::Storage,
    base_offset: u64,
    batches: &[Bytes],
) -> Result<u64, LogError> {
    let name = format!("{}{CLEANED_SUFFIX}", file_name(base_offset, LOG_SUFFIX));
    let path = storage.location(&name);
    let mut file = storage.open(&name, true).map_err(io_error(&path))?;
    file.truncate(0).map_err(io_error(&path))?;
    for batch in batches {
        file.append(batch).map_err(io_error(&path))?;
    }
    file.sync().map_err(io_error(&path))?;
    file.len_bytes().map_err(io_error(&path))
}
