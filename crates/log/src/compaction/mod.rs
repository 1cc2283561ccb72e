//! Log compaction (decision 0017 §6): keeping the newest record per key
//! below a horizon and dropping expired tombstones, by rewriting closed
//! segments.
//!
//! Owns: the bounded key map (`key_map`), the pure per-record decision
//! (`plan`), the pure rewrite of a segment's batches (`rewrite`), the
//! crash-safe swap of rewritten segments (`swap`, replayed by recovery) and
//! one pass over a standalone log (`pass`, [`PartitionLog::compact`]).
//!
//! Not here: the topic settings (`cleanup`, `compaction_lag_ms`), the Raft
//! purge point that bounds the horizon, and any scheduling; the caller
//! picks the horizon.

mod key_map;
mod pass;
mod plan;
mod rewrite;
pub(crate) mod swap;

#[cfg(test)]
mod model_tests;

use crate::{LogError, Offset, PartitionLog};

/// The settings of one compaction pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactionParams {
    /// A tombstone is removed once the log's time (the largest HLC below
    /// the horizon) is this much past its own HLC (Kafka's
    /// `delete.retention.ms`).
    pub tombstone_retention_ms: u64,
    /// Most keys the pass maps; a pass over more keys stops at a lower
    /// horizon and the next pass goes on.
    pub key_map_entries_max: usize,
}

/// What a compaction pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactionSummary {
    /// The horizon the pass reached: every batch below it is compacted. A
    /// batch boundary at or below the one asked for (lower if the key map
    /// filled, or if the asked horizon is inside a segment still open or
    /// not wholly below it).
    pub horizon: Offset,
    /// Segments replaced by a rewrite.
    pub segments_rewritten: usize,
    /// Bytes the rewritten segments shrank by.
    pub bytes_removed: u64,
}

impl CompactionSummary {
    fn nothing(horizon_offset: u64) -> CompactionSummary {
        CompactionSummary {
            horizon: Offset(horizon_offset),
            segments_rewritten: 0,
            bytes_removed: 0,
        }
    }
}

impl PartitionLog {
    /// One compaction pass (decision 0017 §2, §6) over the closed segments
    /// wholly below `horizon`: below the horizon the pass reaches, only the
    /// newest record per key survives, tombstones older than
    /// `params.tombstone_retention_ms` in log time go, and so does every
    /// control record; survivors keep their offsets, and a read at a
    /// removed offset returns the batch covering it (the next survivor
    /// follows). The active segment is never touched. Durable on return,
    /// and a crash at any point leaves each segment old or new.
    ///
    /// The caller picks `horizon`: in a replicated log at or below the
    /// Raft purge point (not wired yet).
    pub fn compact(
        &mut self,
        horizon: Offset,
        params: &CompactionParams,
    ) -> Result<CompactionSummary, LogError> {
        self.compact_below(horizon, params)
    }
}
