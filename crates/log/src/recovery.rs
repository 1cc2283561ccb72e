//! Opening a log directory: find the segments, recover each one in order
//! (see [`Segment::recover`]), keep offsets dense across segments, and
//! settle the start offset.
//!
//! Rules, in order:
//! 0. an interrupted segment swap of log compaction or of a snapshot
//!    restore (`log-swap`) is finished and leftover `.cleaned` files are
//!    deleted (`compaction/swap.rs`); staged files of a restore
//!    (`.log.staged`) are left for the owner (`restore`);
//! 1. leftover temp files and index files without a `.log` are deleted;
//! 2. segments are recovered oldest first; each must start where the
//!    previous one ends, with the next Raft index. A segment cut short (torn
//!    or corrupt tail, or a Raft index that does not follow) or a gap ends
//!    the log there: every later segment is deleted, since offsets and
//!    indexes must stay dense. An overlap cannot come from a crash and is
//!    `Corrupt`. The first batch of the log must follow the stored floor
//!    Raft index when its segment starts exactly at the stored start (or
//!    carry index 1 in a log that never moved its start); below a partial
//!    purge its index is not known;
//! 3. with no segment left, an empty one is created at the stored start;
//! 4. the start offset is the stored one clamped into the log's range (the
//!    clean point too, at most the log end), and segments entirely below
//!    it (an interrupted purge) are deleted.

use std::collections::BTreeSet;

use crate::LogError;
use crate::log_start::{self, LOG_START_FILE, LogStart};
use crate::scan::Expected;
use crate::segment::{LOG_SUFFIX, Segment, delete_files, io_error, parse_file_name};
use crate::storage::{Storage, TEMP_SUFFIX};

/// Recovers the segments (oldest first, never empty) and the log start.
pub(crate) fn recover(
    storage: &dyn Storage,
    index_interval_bytes: u32,
) -> Result<(Vec<Segment>, LogStart), LogError> {
    crate::compaction::swap::finish_pending(storage)?;
    let bases = list_segments(storage)?;
    let stored = log_start::read(storage)?;
    let first_raft_index = match stored {
        Some(stored) if bases.first() == Some(&stored.start_offset) => {
            Some(stored.floor_raft_index + 1)
        }
        None if bases.first() == Some(&0) => Some(1),
        _ => None,
    };
    let mut segments = recover_segments(storage, &bases, first_raft_index, index_interval_bytes)?;
    if segments.is_empty() {
        let base_offset = stored.map_or(0, |s| s.start_offset);
        segments.push(Segment::create(storage, base_offset)?);
    }
    let mut log_start = stored.unwrap_or_default();
    let first_base = segments[0].base_offset();
    let end = segments.last().expect("at least one segment").next_offset();
    log_start.start_offset = log_start.start_offset.clamp(first_base, end);
    // A crash may cut a tail the clean point covered (the log is then
    // compacted up to its end).
    log_start.clean_end_offset = log_start.clean_end_offset.min(end);
    if stored.is_some_and(|s| s != log_start) {
        // Persist the clamped value, or appends past the stored start would
        // make a later open hide records this open serves.
        log_start::write(storage, log_start)?;
    }
    let purged = segments
        .iter()
        .take(segments.len() - 1)
        .take_while(|s| s.next_offset() <= log_start.start_offset)
        .count();
    for segment in segments.drain(..purged) {
        segment.delete(storage)?;
    }
    Ok((segments, log_start))
}

/// Base offsets of the `.log` files, ascending; removes leftovers.
fn list_segments(storage: &dyn Storage) -> Result<Vec<u64>, LogError> {
    let dir = storage.location("");
    let names = storage.list().map_err(io_error(&dir))?;
    let mut logs = BTreeSet::new();
    let mut others = Vec::new();
    for name in names {
        match parse_file_name(&name) {
            Some((base_offset, LOG_SUFFIX)) => {
                logs.insert(base_offset);
            }
            Some((base_offset, _)) => others.push((base_offset, name)),
            None if name.ends_with(TEMP_SUFFIX) => others.push((u64::MAX, name)),
            None if name == LOG_START_FILE || crate::OWNER_FILES.contains(&name.as_str()) => {}
            None if name.ends_with(crate::restore::STAGED_SUFFIX) => {}
            None => tracing::warn!(file = %name, "ignoring an unknown file in the log directory"),
        }
    }
    for (base_offset, name) in others {
        if !logs.contains(&base_offset) {
            storage
                .delete(&name)
                .map_err(io_error(&storage.location(&name)))?;
        }
    }
    Ok(logs.into_iter().collect())
}

/// Recovers the segments at `bases` in order; `raft_index` is what the
/// first batch must carry (`None`: unknown).
fn recover_segments(
    storage: &dyn Storage,
    bases: &[u64],
    mut raft_index: Option<u64>,
    index_interval_bytes: u32,
) -> Result<Vec<Segment>, LogError> {
    let mut segments: Vec<Segment> = Vec::with_capacity(bases.len());
    let mut term_min = 0;
    for (i, &base_offset) in bases.iter().enumerate() {
        if let Some(previous) = segments.last()
            && previous.next_offset() != base_offset
        {
            if previous.next_offset() > base_offset {
                return Err(LogError::Corrupt(format!(
                    "segment {base_offset} overlaps the previous one, which ends at {}",
                    previous.next_offset()
                )));
            }
            tracing::warn!(
                segment = base_offset,
                "gap before segment; dropping it and every later one"
            );
            delete_later(storage, &bases[i..])?;
            break;
        }
        let expected = Expected {
            base_offset,
            raft_index,
            term_min,
        };
        let (segment, cut) = Segment::recover(storage, expected, index_interval_bytes)?;
        if let Some(last) = segment.last_batch() {
            (term_min, raft_index) = (last.term, Expected::after(&last).raft_index);
        }
        segments.push(segment);
        if let Some(reason) = cut {
            tracing::warn!(segment = base_offset, %reason, "cut a torn or corrupt segment tail");
            delete_later(storage, &bases[i + 1..])?;
            break;
        }
    }
    Ok(segments)
}

fn delete_later(storage: &dyn Storage, bases: &[u64]) -> Result<(), LogError> {
    if bases.is_empty() {
        return Ok(());
    }
    for &base_offset in bases.iter().rev() {
        delete_files(storage, base_offset)?;
    }
    storage.sync_dir().map_err(io_error(&storage.location("")))
}
