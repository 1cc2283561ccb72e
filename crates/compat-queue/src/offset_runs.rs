//! [`OffsetRuns`]: the offsets of a queue topic's messages (data records),
//! as runs of consecutive offsets, from a first offset on. Queue positions
//! count messages, not offsets (Raft's blank and membership entries take
//! offsets that readers skip), so `/size` and consume ask this index "how
//! many messages at or after offset `s`" and "which is the `k`-th". Runs
//! break only where the log has a control batch (after a leader change),
//! so the index stays a few entries long however many messages it counts.
//! Pure: the tail that feeds it lives in `tail.rs`.

use citystream_client::ConsumerRecord;

use citystream_client::tail::Fold;

/// Consecutive message offsets `first..end`, after `before` messages of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    first: u64,
    end: u64,
    before: u64,
}

/// Invariants: runs are sorted, disjoint and non-empty, each starts at or
/// after `begin`, and `before` is the count of messages in the runs before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetRuns {
    begin: u64,
    runs: Vec<Run>,
}

impl OffsetRuns {
    /// An index of the messages at offsets `begin` and after.
    pub fn new(begin: u64) -> OffsetRuns {
        OffsetRuns {
            begin,
            runs: Vec::new(),
        }
    }

    /// The first offset the index covers.
    pub fn begin(&self) -> u64 {
        self.begin
    }

    /// Adds the message at `offset`; offsets below `begin` or not above the
    /// last one (a re-read batch) are ignored.
    pub fn push(&mut self, offset: u64) {
        if offset < self.begin || self.runs.last().is_some_and(|last| offset < last.end) {
            return;
        }
        match self.runs.last_mut() {
            Some(last) if last.end == offset => last.end += 1,
            _ => {
                let before = self.len();
                self.runs.push(Run {
                    first: offset,
                    end: offset + 1,
                    before,
                });
            }
        }
    }

    /// Messages in the index.
    pub fn len(&self) -> u64 {
        self.runs
            .last()
            .map_or(0, |last| last.before + (last.end - last.first))
    }

    /// Messages at offsets below `offset` (at or after `begin`).
    fn rank(&self, offset: u64) -> u64 {
        let after = self.runs.partition_point(|run| run.first < offset);
        match after.checked_sub(1).map(|i| self.runs[i]) {
            None => 0,
            Some(run) => run.before + (offset.min(run.end) - run.first),
        }
    }

    /// Messages at offset `start` or after; `start` must not be below `begin`.
    pub fn count_from(&self, start: u64) -> u64 {
        assert!(
            start >= self.begin,
            "the index starts at {}, not {start}",
            self.begin
        );
        self.len() - self.rank(start)
    }

    /// The offset of the `k`-th message (from 0) at or after `start`, if the
    /// index holds that many.
    pub fn nth_from(&self, start: u64, k: u64) -> Option<u64> {
        assert!(
            start >= self.begin,
            "the index starts at {}, not {start}",
            self.begin
        );
        let wanted = self.rank(start).checked_add(k)?;
        if wanted >= self.len() {
            return None;
        }
        let at = self.runs.partition_point(|run| run.before <= wanted) - 1;
        let run = self.runs[at];
        Some(run.first + (wanted - run.before))
    }
}

impl Fold for OffsetRuns {
    fn apply(&mut self, record: &ConsumerRecord) {
        self.push(record.offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(begin: u64, offsets: &[u64]) -> OffsetRuns {
        let mut runs = OffsetRuns::new(begin);
        for offset in offsets {
            runs.push(*offset);
        }
        runs
    }

    /// Counting and selecting skip the offsets no message holds, as a scan would.
    #[test]
    fn count_and_select_agree_with_a_scan() {
        let offsets = [3, 4, 5, 7, 8, 12, 13, 14, 15, 20];
        let runs = index(2, &offsets);
        assert_eq!(runs.len(), offsets.len() as u64);
        assert_eq!(runs.runs.len(), 4);
        for start in 2..=22 {
            let after: Vec<u64> = offsets.iter().copied().filter(|o| *o >= start).collect();
            assert_eq!(runs.count_from(start), after.len() as u64, "start {start}");
            for k in 0..=after.len() as u64 + 1 {
                let expected = after.get(k as usize).copied();
                assert_eq!(runs.nth_from(start, k), expected, "start {start} k {k}");
            }
        }
    }

    /// Offsets below the beginning and re-read offsets do not count twice.
    #[test]
    fn ignores_offsets_below_begin_and_repeats() {
        let runs = index(5, &[1, 4, 5, 6, 6, 5, 9, 9]);
        assert_eq!(runs, index(5, &[5, 6, 9]));
        assert_eq!(runs.count_from(5), 3);
    }

    /// An empty index counts nothing and selects nothing.
    #[test]
    fn empty_index() {
        let runs = OffsetRuns::new(10);
        assert_eq!(runs.len(), 0);
        assert_eq!(runs.count_from(10), 0);
        assert_eq!(runs.nth_from(12, 0), None);
        assert_eq!(runs.nth_from(10, u64::MAX), None);
    }

    /// Asking below the index's beginning is a bug in the caller.
    #[test]
    #[should_panic(expected = "the index starts at 4")]
    fn start_below_begin_panics() {
        index(4, &[4]).count_from(3);
    }
}
