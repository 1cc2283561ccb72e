//! Log compaction (decision 0017 §6): keeping the newest record per key
//! below a horizon and dropping expired tombstones, by rewriting closed
//! segments.
//!
//! Owns: the bounded key map (`key_map`), the pure per-record decision
//! (`plan`), the pure rewrite of a group's batches (`rewrite`), the three
//! steps of a pass, planned under the log's read lock (`select`,
//! [`PartitionLog::plan_compaction`]), run with no lock (`run`,
//! [`CompactionPlan::run`]) and committed under the write lock (`commit`,
//! [`PartitionLog::commit_compaction`]), and the crash-safe swap of files
//! (`swap`, replayed by recovery, also used by a snapshot restore). The
//! clean point, where the last pass ended, is kept in `log-start-offset`
//! (`log_start.rs`), so a pass maps keys only from there on.
//!
//! Not here: the topic settings (`cleanup`, `compaction_lag_ms`), the Raft
//! purge point that bounds the horizon, and any scheduling; the caller
//! picks the horizon.
//!
//! Not done yet: a bounded read buffer (`run.rs`), and retention of
//! `compact,delete` topics only below the clean point (§6).

mod commit;
mod key_map;
mod plan;
mod rewrite;
mod run;
mod select;
pub(crate) mod swap;

#[cfg(test)]
mod model_tests;

pub use key_map::KEY_MAP_ENTRY_BYTES;
pub use run::Cleaned;
pub use select::{CompactionPlan, InputSegment};

use crate::{LogError, Offset, PartitionLog};

/// The settings of one compaction pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactionParams {
    /// A tombstone is removed once the log's time (the largest HLC below
    /// the horizon) is this much past its own HLC (Kafka's
    /// `delete.retention.ms`).
    pub tombstone_retention_ms: u64,
    /// Memory of the key map (`compaction_buffer_bytes`): slots of
    /// [`KEY_MAP_ENTRY_BYTES`], filled to three quarters. A pass whose
    /// dirty section has more keys stops at a lower horizon and the next
    /// pass goes on from there. One batch's keys must fit, or no pass
    /// progresses: the broker's minimum is 16 MiB.
    pub key_map_bytes_max: usize,
    /// A pass is due only when at least this share (percent) of the bytes
    /// it would rewrite is dirty: past the clean point (Kafka's
    /// `min.cleanable.dirty.ratio`). 0: whenever anything is dirty.
    pub dirty_ratio_min_percent: u8,
}

impl CompactionParams {
    /// The smallest `key_map_bytes_max` whose map holds `entries` keys
    /// (tests use tiny maps).
    pub fn key_map_bytes_for(entries: usize) -> usize {
        (entries * 4).div_ceil(3) * KEY_MAP_ENTRY_BYTES
    }
}

/// What a compaction pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactionSummary {
    /// The horizon the pass reached: every batch below it is compacted. A
    /// batch boundary at or below the one asked for (lower if the key map
    /// filled, or if the asked horizon is inside a segment still open or
    /// not wholly below it). For an abandoned pass, the clean point.
    pub horizon: Offset,
    /// Input segments replaced by rewrites (a group of several becomes one).
    pub segments_rewritten: usize,
    /// Bytes the rewritten segments shrank by.
    pub bytes_removed: u64,
    /// The log changed under the pass (retention, a purge, a truncate, a
    /// reset or a restore), so nothing was committed and its output is
    /// deleted; plan again.
    pub abandoned: bool,
}

impl CompactionSummary {
    fn nothing(horizon_offset: u64) -> CompactionSummary {
        CompactionSummary {
            horizon: Offset(horizon_offset),
            segments_rewritten: 0,
            bytes_removed: 0,
            abandoned: false,
        }
    }

    fn abandoned(clean_end_offset: u64) -> CompactionSummary {
        CompactionSummary {
            abandoned: true,
            ..CompactionSummary::nothing(clean_end_offset)
        }
    }
}

impl PartitionLog {
    /// Plans a compaction pass (decision 0017 §2, §6) over the closed
    /// segments wholly below `horizon`; cheap (no I/O), for the owner's
    /// read lock. `None` if there is nothing to do: no closed segment
    /// below `horizon`, or none past the clean point.
    ///
    /// Below the horizon a pass reaches, only the newest record per key
    /// survives, tombstones older than `params.tombstone_retention_ms` in
    /// log time go, and so does every control record; survivors keep their
    /// offsets, and a read at a removed offset returns the batch covering
    /// it (the next survivor follows). The active segment is never
    /// touched. The caller picks `horizon`: in a replicated log at or below
    /// the Raft purge point.
    pub fn plan_compaction(
        &self,
        horizon: Offset,
        params: &CompactionParams,
    ) -> Option<CompactionPlan> {
        self.plan_below(horizon, params)
    }

    /// Commits a pass run by [`CompactionPlan::run`], under the owner's
    /// write lock (milliseconds): if every input segment is still there
    /// and unchanged, swaps the outputs in and records the new clean
    /// point, durably and crash-safely (a crash leaves each group old or
    /// new); otherwise deletes the outputs and returns an `abandoned`
    /// summary. Appends made since the plan are kept either way. After an
    /// error the log is read back from its storage ([`Self::reopen`]:
    /// recovery finishes or drops the swap), so it never serves what the
    /// error left in memory; if that fails too, the log must be reopened.
    pub fn commit_compaction(&mut self, cleaned: Cleaned) -> Result<CompactionSummary, LogError> {
        self.commit_cleaned(cleaned).inspect_err(|_| {
            if let Err(error) = self.reopen() {
                tracing::error!(%error, "the log could not be read back after a failed compaction");
            }
        })
    }

    /// One whole pass, plan, run and commit, holding `&mut self`
    /// throughout: for a standalone log and tests.
    pub fn compact(
        &mut self,
        horizon: Offset,
        params: &CompactionParams,
    ) -> Result<CompactionSummary, LogError> {
        let Some(plan) = self.plan_compaction(horizon, params) else {
            return Ok(CompactionSummary::nothing(self.reachable_horizon(horizon)));
        };
        let cleaned = plan.run()?;
        self.commit_compaction(cleaned)
    }

    /// The clean point: below it the log is compacted (where the last
    /// pass ended, as stored in `log-start-offset`).
    pub fn clean_end(&self) -> Offset {
        Offset(self.log_start.clean_end_offset)
    }
}
