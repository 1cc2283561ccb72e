//! Finding a batch by its Raft index. Offsets and Raft indexes grow
//! together along the log, so no index file of its own is needed: a binary
//! search over segments by their first batch's index, then over the
//! segment's sparse offset index (reading the header each entry points to),
//! then a walk of headers forward, checking that indexes stay dense (but
//! for a compaction `GAP` batch, which covers the entries up to its own:
//! an index strictly inside a gap is not served, like a purged one).
//!
//! This module does not keep any state; a lookup costs about
//! `log2(index entries)` header reads plus one short walk.

use std::ops::ControlFlow;

use citystream_record::BatchHeader;

use crate::scan::raft_index_follows;
use crate::segment::Segment;
use crate::{LogError, PartitionLog};

impl PartitionLog {
    pub(crate) fn locate_raft(&self, raft_index: u64) -> Result<Option<BatchHeader>, LogError> {
        if raft_index == 0 || raft_index > self.last_raft_index {
            return Ok(None);
        }
        // Only the empty active segment has no first index, and it is last.
        let after = self.segments.partition_point(|s| {
            s.first_raft_index()
                .is_some_and(|first| first <= raft_index)
        });
        let Some(index) = after.checked_sub(1) else {
            return Ok(None);
        };
        let found = locate_in_segment(&self.segments[index], raft_index)?;
        let start_offset = self.log_start.start_offset;
        Ok(found.filter(|header| header.next_offset() > start_offset))
    }
}

/// The header of the batch with `raft_index` in `segment`, if it holds it.
fn locate_in_segment(segment: &Segment, raft_index: u64) -> Result<Option<BatchHeader>, LogError> {
    let (Some(first), Some(last)) = (segment.first_raft_index(), segment.last_batch()) else {
        return Ok(None);
    };
    if raft_index < first || raft_index > last.raft_index {
        return Ok(None);
    }
    let from = last_indexed_at_or_below(segment, raft_index)?;
    let mut previous: Option<u64> = None;
    let mut outcome = Ok(None);
    segment.walk(from, |_, header| {
        if previous.is_some_and(|p| !raft_index_follows(header, p)) {
            outcome = Err(format!(
                "Raft index {} follows {}",
                header.raft_index,
                previous.unwrap_or_default()
            ));
            return ControlFlow::Break(());
        }
        previous = Some(header.raft_index);
        if header.raft_index >= raft_index {
            outcome = Ok((header.raft_index == raft_index).then_some(*header));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })?;
    outcome.map_err(|what| segment.corrupt(what))
}

/// Position of the last indexed batch whose Raft index is `<= raft_index`
/// (0, the first batch, if none): a binary search that reads one header
/// per probe.
fn last_indexed_at_or_below(segment: &Segment, raft_index: u64) -> Result<u64, LogError> {
    let entries = segment.offset_index();
    let position = |i: usize| u64::from(entries[i].position);
    // Invariant: entries[..low] are at or below, entries[high..] above.
    // Each round halves `high - low`, so it ends.
    let (mut low, mut high) = (0, entries.len());
    while low < high {
        let middle = low + (high - low) / 2;
        if segment.header_at_position(position(middle))?.raft_index <= raft_index {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    Ok(low.checked_sub(1).map_or(0, position))
}
