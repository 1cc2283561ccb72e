//! Planning a compaction pass, under the log's read lock (decision 0017
//! §6): pick the closed segments wholly below the horizon, group
//! consecutive small ones so each group becomes one output segment, and
//! note the clean point. Cheap: no batch is read.
//!
//! Not here: reading or writing segments (`run.rs`), the swap (`commit.rs`).

use std::sync::Arc;

use super::CompactionParams;
use crate::segment::{LOG_SUFFIX, Segment, file_name};
use crate::storage::Storage;
use crate::{Offset, PartitionLog};

/// One closed segment a pass reads, as the plan saw it. Closed segments
/// are immutable, so the pass opens it by name without the log's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSegment {
    pub base_offset: Offset,
    /// Offset after the segment's last batch.
    pub next_offset: Offset,
    /// The `.log` file's name in the log's storage.
    pub file_name: String,
    pub size_bytes: u64,
}

impl InputSegment {
    fn of(segment: &Segment) -> InputSegment {
        InputSegment {
            base_offset: Offset(segment.base_offset()),
            next_offset: Offset(segment.next_offset()),
            file_name: file_name(segment.base_offset(), LOG_SUFFIX),
            size_bytes: segment.size_bytes(),
        }
    }
}

/// What one pass will do, taken under the read lock and run without any
/// lock ([`CompactionPlan::run`]). `Send + 'static`: it holds the log's
/// storage, so it can move to a blocking task. One plan at a time per log.
#[derive(Debug)]
pub struct CompactionPlan {
    pub(super) storage: Arc<dyn Storage>,
    /// The log's shape when planned; a commit in another shape is dropped.
    pub(super) epoch: u64,
    pub(super) groups: Vec<Vec<InputSegment>>,
    pub(super) clean_end_offset: u64,
    pub(super) clean_reference_ms: i64,
    pub(super) horizon_offset: u64,
    pub(super) params: CompactionParams,
}

impl CompactionPlan {
    /// The input segments, oldest first, in groups that each become one
    /// output segment.
    pub fn groups(&self) -> &[Vec<InputSegment>] {
        &self.groups
    }

    /// The clean point: keys are mapped only from here on.
    pub fn clean_end(&self) -> Offset {
        Offset(self.clean_end_offset)
    }

    /// The horizon the plan aims at: the end of its last input (the pass
    /// may stop lower if its key map fills).
    pub fn horizon(&self) -> Offset {
        Offset(self.horizon_offset)
    }
}

impl PartitionLog {
    pub(crate) fn plan_below(
        &self,
        horizon: Offset,
        params: &CompactionParams,
    ) -> Option<CompactionPlan> {
        let closed = self.compactable_segments(horizon.0);
        let inputs: Vec<InputSegment> = self.segments[..closed]
            .iter()
            .map(InputSegment::of)
            .collect();
        let horizon_offset = inputs.last()?.next_offset.0;
        let first_base = inputs[0].base_offset.0;
        // Below the first segment nothing is left to be clean or dirty.
        let clean_end_offset = self.log_start.clean_end_offset.max(first_base);
        if clean_end_offset >= horizon_offset {
            return None;
        }
        Some(CompactionPlan {
            storage: Arc::clone(&self.storage),
            epoch: self.epoch,
            groups: group_segments(inputs, self.config.segment_bytes_max),
            clean_end_offset,
            clean_reference_ms: self.log_start.clean_reference_ms,
            horizon_offset,
            params: *params,
        })
    }

    /// How many of the oldest segments are closed and end at or below
    /// `horizon_offset` (only the active segment may be empty).
    pub(super) fn compactable_segments(&self, horizon_offset: u64) -> usize {
        let closed = &self.segments[..self.segments.len() - 1];
        closed
            .iter()
            .take_while(|s| s.next_offset() <= horizon_offset)
            .count()
    }

    /// The horizon a pass at `horizon` could reach: the end of the last
    /// closed segment below it (the first segment's base if none).
    pub(super) fn reachable_horizon(&self, horizon: Offset) -> u64 {
        match self.compactable_segments(horizon.0).checked_sub(1) {
            Some(last) => self.segments[last].next_offset(),
            None => self.segments[0].base_offset(),
        }
    }
}

/// Consecutive segments in runs of at most `bytes_max` bytes and
/// `u32::MAX` offsets (index offsets are relative `u32`s); a segment
/// larger than that is a run of its own. Repeated passes so merge the
/// small outputs of earlier ones instead of leaving many tiny segments.
fn group_segments(inputs: Vec<InputSegment>, bytes_max: u64) -> Vec<Vec<InputSegment>> {
    let mut groups: Vec<Vec<InputSegment>> = Vec::new();
    let mut group_bytes = 0u64;
    for input in inputs {
        let fits = groups.last().is_some_and(|group| {
            let span = input.next_offset.0 - group[0].base_offset.0;
            group_bytes + input.size_bytes <= bytes_max && span <= u64::from(u32::MAX)
        });
        if fits {
            group_bytes += input.size_bytes;
            groups.last_mut().expect("a group to extend").push(input);
        } else {
            group_bytes = input.size_bytes;
            groups.push(vec![input]);
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(base: u64, next: u64, size_bytes: u64) -> InputSegment {
        InputSegment {
            base_offset: Offset(base),
            next_offset: Offset(next),
            file_name: file_name(base, LOG_SUFFIX),
            size_bytes,
        }
    }

    fn bases(groups: &[Vec<InputSegment>]) -> Vec<Vec<u64>> {
        groups
            .iter()
            .map(|g| g.iter().map(|i| i.base_offset.0).collect())
            .collect()
    }

    /// Runs fill up to the byte limit, an oversized segment stands alone,
    /// and a run never spans more than `u32::MAX` offsets.
    #[test]
    fn groups_by_size_and_span() {
        let inputs = vec![
            input(0, 10, 40),
            input(10, 20, 60),
            input(20, 30, 1),
            input(30, 40, 500),
            input(40, 50, 30),
            input(50, 60, 30),
        ];
        assert_eq!(
            bases(&group_segments(inputs, 100)),
            vec![vec![0, 10], vec![20], vec![30], vec![40, 50]]
        );
        let far = u64::from(u32::MAX);
        let inputs = vec![input(0, 10, 1), input(10, far, 1), input(far, far + 1, 1)];
        assert_eq!(
            bases(&group_segments(inputs, 100)),
            vec![vec![0, 10], vec![far]]
        );
        assert!(group_segments(Vec::new(), 100).is_empty());
    }
}
