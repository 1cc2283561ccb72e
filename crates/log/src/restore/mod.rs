//! Receiving a snapshot prefix (decision 0017 §5, items 3-4, log side): a
//! follower behind a compacted leader's purge point gets the leader's
//! compacted prefix in chunks, stages it in `<base>.log.staged` files
//! beside the live log, and swaps it in at once when the snapshot commits.
//!
//! Owns: checking and appending chunks ([`PartitionLog::stage_prefix`],
//! `staged.rs`), the staged files across restarts (recovery leaves them;
//! [`Staged::recover`] checks them again on open), and the swap
//! ([`PartitionLog::finish_restore`]) through the compaction swap
//! manifest, so a crash at any step leaves the old log with the staged
//! files, or the restored log.
//!
//! Not here: the chunk stream, the snapshot file and `last_purged` (the
//! Raft layer's). The Raft layer decides when staged files are complete
//! and calls `finish_restore` again after a restart that stopped before
//! the swap, or `discard_staged` if no snapshot needs them.

mod staged;

pub(crate) use staged::{STAGED_SUFFIX, Staged};

use crate::compaction::swap::{self, SwapManifest};
use crate::log_start::LogStart;
use crate::recovery;
use crate::scan::raft_index_follows;
use crate::segment::{INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, file_name};
use crate::{LogError, Offset, PartitionLog, Term, next_epoch};

/// What [`PartitionLog::stage_prefix`] did with a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageOutcome {
    /// The chunk was appended to the staged prefix (durably).
    Staged,
    /// The same bytes were staged already (a duplicated chunk): nothing
    /// was written.
    AlreadyStaged,
}

impl PartitionLog {
    /// Stages one chunk of a snapshot prefix: `batches` is whole batches,
    /// concatenated, starting at `from_offset`. Each batch's CRC and
    /// records are checked, offsets must be dense by span, Raft indexes
    /// dense (a `GAP` may skip) and terms must not decrease, also across
    /// chunks. `first` starts a new prefix at `from_offset`, discarding any
    /// staged before (an empty `batches` then stages an empty prefix);
    /// otherwise `from_offset` must be the staged end. A chunk whose bytes
    /// are already staged is acknowledged without writing; any other
    /// mismatch is `StagedMismatch` (the sender starts over with `first`).
    /// Durable on return; staged files roll at `segment_bytes_max`.
    pub fn stage_prefix(
        &mut self,
        first: bool,
        from_offset: Offset,
        batches: &[u8],
    ) -> Result<StageOutcome, LogError> {
        self.stage_chunk(first, from_offset.0, batches)
    }

    /// The offset after the staged prefix, if one is staged (also after a
    /// restart: staged files are kept and checked again on open).
    pub fn staged_end(&self) -> Option<Offset> {
        self.staged
            .as_ref()
            .map(|staged| Offset(staged.end_offset()))
    }

    /// Header of the last staged batch (its term and Raft index must be
    /// the snapshot's before the Raft layer commits it), if any.
    pub fn staged_last_batch(&self) -> Option<crate::BatchHeader> {
        self.staged.as_ref().and_then(Staged::last_batch)
    }

    /// Header of the first staged batch, if any.
    pub fn staged_first_batch(&self) -> Option<crate::BatchHeader> {
        self.staged.as_ref().and_then(Staged::first_batch)
    }

    /// Deletes every staged file.
    pub fn discard_staged(&mut self) -> Result<(), LogError> {
        self.staged = None;
        staged::delete_all(&*self.storage)
    }

    /// Replaces the whole live log by the staged prefix, crash-safely: one
    /// swap manifest deletes every live segment and its indexes, renames
    /// the staged files to segments and writes the new log start (start =
    /// the first staged base offset; `floor_term` and `floor_raft_index`
    /// are those of the entry just below it, as [`Self::floor`] reports,
    /// or the snapshot's last entry if the prefix is empty). Durable on
    /// return. A crash at any step is finished by the next open (recovery
    /// replays the manifest) or, if it came before the manifest, leaves the
    /// old log and the staged files, so calling this again completes it.
    ///
    /// The clean point is the start: the prefix is a compaction of the
    /// leader's log at some horizon at or below its end, not necessarily at
    /// its end, so the next pass maps it again.
    pub fn finish_restore(
        &mut self,
        floor_term: Term,
        floor_raft_index: u64,
    ) -> Result<(), LogError> {
        let staged = self.staged.as_ref().ok_or(LogError::NothingStaged)?;
        if let Some(first) = staged.first_batch()
            && !raft_index_follows(&first, floor_raft_index)
        {
            return Err(LogError::RaftIndexNonContiguous {
                expected: floor_raft_index + 1,
                found: first.raft_index,
            });
        }
        let start_offset = staged.start_offset();
        let mut manifest = SwapManifest {
            log_start: Some(LogStart {
                start_offset,
                floor_term: floor_term.0,
                floor_raft_index,
                clean_end_offset: start_offset,
                clean_reference_ms: i64::MIN,
            }),
            ..SwapManifest::default()
        };
        manifest.renames = staged
            .file_bases()
            .map(|base| (staged::file_name_of(base), file_name(base, LOG_SUFFIX)))
            .collect();
        manifest.deletes = self.live_files_except(&manifest.renames);
        self.clear_read_hint();
        self.epoch = next_epoch();
        swap::commit(&*self.storage, &manifest)?;
        self.reload()?;
        tracing::info!(
            start_offset,
            next_offset = self.next_offset().0,
            "restored the log from a staged snapshot prefix"
        );
        Ok(())
    }

    /// The live segments' files, index files first, leaving out the
    /// targets of `renames` (a rename replaces them).
    fn live_files_except(&self, renames: &[(String, String)]) -> Vec<String> {
        let bases: Vec<u64> = self.segments.iter().map(|s| s.base_offset()).collect();
        let indexes = bases.iter().flat_map(|&base| {
            [INDEX_SUFFIX, TIME_INDEX_SUFFIX].map(|suffix| file_name(base, suffix))
        });
        let logs = bases
            .iter()
            .map(|&base| file_name(base, LOG_SUFFIX))
            .filter(|name| renames.iter().all(|(_, to)| to != name));
        indexes.chain(logs).collect()
    }

    /// Reads the log back from its storage as an open does: after an
    /// error from [`Self::commit_compaction`] or [`Self::finish_restore`],
    /// recovery finishes or drops the interrupted swap, so the log serves
    /// the old or the new segments again, never what the error left in
    /// memory.
    pub fn reopen(&mut self) -> Result<(), LogError> {
        self.clear_read_hint();
        self.epoch = next_epoch();
        self.reload()
    }

    /// Opens the log's files again, as a fresh open would.
    fn reload(&mut self) -> Result<(), LogError> {
        let (segments, log_start) =
            recovery::recover(&*self.storage, self.config.index_interval_bytes)?;
        self.segments = segments;
        self.log_start = log_start;
        self.staged = Staged::recover(&*self.storage)?;
        self.derive_last();
        self.check_invariants();
        Ok(())
    }
}
