//! Committing a pass, under the log's write lock (decision 0017 §6):
//! re-check that every input is still there and unchanged, then swap the
//! `.cleaned` outputs in with one manifest that also carries the new clean
//! point, and reopen each output with [`Segment::recover`], which rebuilds
//! its indexes and checks every batch a second time. Milliseconds: no
//! batch is read here except by that recovery of the outputs.
//!
//! If the log changed under the pass (retention or a purge removed an
//! input, a truncate, reset, restore or another commit changed its shape),
//! the outputs are deleted and nothing else happens: the next pass starts
//! over from a new plan.

use super::CompactionSummary;
use super::run::Cleaned;
use super::select::InputSegment;
use super::swap::{self, CLEANED_SUFFIX, SwapManifest};
use crate::log_start::LogStart;
use crate::scan::Expected;
use crate::segment::{INDEX_SUFFIX, LOG_SUFFIX, Segment, TIME_INDEX_SUFFIX, file_name, io_error};
use crate::{LogError, PartitionLog, next_epoch};

impl PartitionLog {
    pub(crate) fn commit_cleaned(
        &mut self,
        cleaned: Cleaned,
    ) -> Result<CompactionSummary, LogError> {
        if !self.inputs_unchanged(&cleaned) {
            delete_outputs(&cleaned)?;
            tracing::info!("the log changed under a compaction pass; its output is dropped");
            return Ok(CompactionSummary::abandoned(
                self.log_start.clean_end_offset,
            ));
        }
        assert!(
            cleaned.horizon_offset >= self.log_start.clean_end_offset,
            "a pass never lowers the clean point"
        );
        let log_start = LogStart {
            clean_end_offset: cleaned.horizon_offset,
            clean_reference_ms: cleaned.reference_ms,
            ..self.log_start
        };
        self.clear_read_hint();
        // A failure from here on leaves the log to be reopened (recovery
        // finishes the swap); a new epoch keeps stale passes out.
        self.epoch = next_epoch();
        if cleaned.rewritten.is_empty() {
            if log_start != self.log_start {
                self.write_log_start(log_start)?;
            }
        } else {
            swap::commit(
                &*self.storage,
                &swap_manifest(&cleaned.rewritten, log_start),
            )?;
            self.log_start = log_start;
            for group in &cleaned.rewritten {
                self.replace_group(group)?;
            }
        }
        self.derive_last();
        self.check_invariants();
        Ok(CompactionSummary {
            horizon: crate::Offset(cleaned.horizon_offset),
            segments_rewritten: cleaned.rewritten.iter().map(Vec::len).sum(),
            bytes_removed: cleaned.bytes_removed,
            abandoned: false,
        })
    }

    /// Whether every input of the pass is still a closed segment with the
    /// size and end it had, in the log shape the pass was planned in.
    fn inputs_unchanged(&self, cleaned: &Cleaned) -> bool {
        let closed = &self.segments[..self.segments.len() - 1];
        cleaned.epoch == self.epoch
            && !cleaned.input_missing
            && cleaned.inputs.iter().all(|input| {
                closed
                    .binary_search_by_key(&input.base_offset.0, Segment::base_offset)
                    .is_ok_and(|at| {
                        let segment = &closed[at];
                        segment.next_offset() == input.next_offset.0
                            && segment.size_bytes() == input.size_bytes
                    })
            })
    }

    /// Replaces the segments of `group` (swapped on disk) by the one
    /// output segment now in the first one's files.
    fn replace_group(&mut self, group: &[InputSegment]) -> Result<(), LogError> {
        let first = self
            .segments
            .binary_search_by_key(&group[0].base_offset.0, Segment::base_offset)
            .expect("a committed group's segments are in the log");
        let end = first + group.len();
        assert_eq!(
            self.segments[end - 1].base_offset(),
            group[group.len() - 1].base_offset.0,
            "a group's segments are consecutive"
        );
        let expected = match first.checked_sub(1) {
            Some(previous) => Expected::after(
                &self.segments[previous]
                    .last_batch()
                    .expect("a closed segment holds a batch"),
            ),
            None => Expected {
                base_offset: group[0].base_offset.0,
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
            (group[0].base_offset.0, self.segments[end - 1].next_offset()),
            "a rewritten segment covers the same offsets"
        );
        self.segments.splice(first..end, [segment]);
        Ok(())
    }
}

/// The swap of `groups` (each into its first segment's name): the inputs'
/// index files, then the `.log` files of all but the first input of each
/// group, then the renames and the new log start.
fn swap_manifest(groups: &[Vec<InputSegment>], log_start: LogStart) -> SwapManifest {
    let mut manifest = SwapManifest {
        log_start: Some(log_start),
        ..SwapManifest::default()
    };
    for input in groups.iter().flatten() {
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            manifest
                .deletes
                .push(file_name(input.base_offset.0, suffix));
        }
    }
    for group in groups {
        for input in &group[1..] {
            manifest.deletes.push(input.file_name.clone());
        }
        let log = file_name(group[0].base_offset.0, LOG_SUFFIX);
        manifest
            .renames
            .push((format!("{log}{CLEANED_SUFFIX}"), log));
    }
    manifest
}

/// Deletes the `.cleaned` outputs of a pass that is not committed.
fn delete_outputs(cleaned: &Cleaned) -> Result<(), LogError> {
    let storage = &*cleaned.storage;
    for group in &cleaned.rewritten {
        let name = format!("{}{CLEANED_SUFFIX}", group[0].file_name);
        storage
            .delete(&name)
            .map_err(io_error(&storage.location(&name)))?;
    }
    Ok(())
}
