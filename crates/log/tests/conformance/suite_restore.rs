//! Conformance: staging a snapshot prefix and swapping it in (decision
//! 0017 §5, log side) on every backend. Chunks are checked and staged
//! durably, duplicates are acknowledged, mismatches refused, staged files
//! survive a reopen, and `finish_restore` replaces the whole log by the
//! prefix; a crash at any step leaves the old log with the staged files
//! (and calling it again finishes) or the restored log.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use citystream_log::{
    CompactionParams, LogConfig, LogError, Offset, PartitionLog, StageOutcome, Term,
};

use crate::common::*;

fn config() -> LogConfig {
    small_config(500)
}

/// A compacted leader log to take the prefix from, and its chunks as
/// (from offset, whole batches) of about 300 bytes.
fn source_chunks() -> (PartitionLog, Vec<(Offset, Bytes)>) {
    let mut source = PartitionLog::in_memory(small_config(700));
    for i in 0..30 {
        append(
            &mut source,
            i,
            1 + (i % 3) as u32,
            1_000 + i as i64,
            1 + i / 10,
        );
    }
    let params = CompactionParams {
        tombstone_retention_ms: 0,
        key_map_bytes_max: 1 << 20,
        dirty_ratio_min_percent: 0,
    };
    let summary = source.compact(source.next_offset(), &params).unwrap();
    assert!(summary.segments_rewritten > 0, "the prefix is compacted");
    let mut chunks = Vec::new();
    let mut from = source.start_offset();
    // Each read returns at least one batch, so this ends at the log end.
    while from < source.next_offset() {
        let read = source.read(from, 300).unwrap();
        let end = read_all_from(&read.bytes);
        chunks.push((from, read.bytes));
        from = end;
    }
    assert!(chunks.len() >= 4, "several chunks");
    (source, chunks)
}

/// The offset after the last batch of `bytes`.
fn read_all_from(bytes: &Bytes) -> Offset {
    let last = citystream_record::BatchIter::new(bytes.clone()).last();
    Offset(last.unwrap().unwrap().header().next_offset())
}

/// A live log the restore replaces: longer than the prefix, other data.
fn write_live(log: &mut PartitionLog) {
    for i in 0..40 {
        append(log, 100 + i, 3, 50_000, 1);
    }
}

fn stage_all(log: &mut PartitionLog, chunks: &[(Offset, Bytes)]) {
    for (at, (from, bytes)) in chunks.iter().enumerate() {
        let outcome = log.stage_prefix(at == 0, *from, bytes).unwrap();
        assert_eq!(outcome, StageOutcome::Staged);
    }
}

/// The restored log serves the prefix byte for byte, continues its Raft
/// indexes and terms, keeps no staged file, and survives a reopen;
/// duplicated chunks (also a repeated first one) are acknowledged without
/// writing, and staged files survive a reopen before the swap.
pub fn a_staged_prefix_replaces_the_whole_log(factory: Factory) {
    let (source, chunks) = source_chunks();
    let fixture = factory();
    let mut log = fixture.open(config());
    write_live(&mut log);
    stage_all(&mut log, &chunks);
    for (at, (from, bytes)) in chunks.iter().enumerate().take(3) {
        let outcome = log.stage_prefix(at == 0, *from, bytes).unwrap();
        assert_eq!(outcome, StageOutcome::AlreadyStaged, "chunk {at}");
    }
    assert_eq!(log.staged_end(), Some(source.next_offset()));
    assert!(
        names_with(&*fixture.storage, ".staged").len() >= 2,
        "staged files roll"
    );
    drop(log);
    let mut log = fixture.open(config());
    assert_eq!(log.staged_end(), Some(source.next_offset()), "kept on open");
    assert_eq!(log.staged_last_batch(), source.last_batch());
    log.finish_restore(Term(0), 0).unwrap();
    for reopen in [false, true] {
        if reopen {
            drop(log);
            log = fixture.open(config());
        }
        assert_eq!(read_all(&log, 1 << 20), read_all(&source, 1 << 20));
        assert_eq!(log.next_offset(), source.next_offset());
        assert_eq!(log.last_raft_index(), source.last_raft_index());
        assert_eq!(log.last_term(), source.last_term());
        assert_eq!(log.staged_end(), None);
        assert_eq!(log.clean_end(), log.start_offset(), "mapped again");
        assert!(names_with(&*fixture.storage, ".staged").is_empty());
    }
    append(&mut log, 999, 2, 60_000, 4);
    assert_eq!(log.last_raft_index(), source.last_raft_index() + 1);
}

/// Chunks that are damaged, skip ahead, or differ from what is staged are
/// refused without changing the staging; `first` starts over; discarding
/// deletes the files; restoring needs a staged prefix whose first batch
/// follows the given floor.
pub fn bad_or_stale_chunks_are_refused(factory: Factory) {
    let (_, chunks) = source_chunks();
    let fixture = factory();
    let mut log = fixture.open(config());
    write_live(&mut log);
    let live = read_all(&log, 1 << 20);
    let (from, bytes) = &chunks[0];
    assert!(matches!(
        log.stage_prefix(false, *from, bytes),
        Err(LogError::NothingStaged)
    ));
    assert!(matches!(
        log.finish_restore(Term(0), 0),
        Err(LogError::NothingStaged)
    ));
    log.stage_prefix(true, *from, bytes).unwrap();
    let staged_end = log.staged_end();
    let mut damaged = chunks[1].1.to_vec();
    *damaged.last_mut().unwrap() ^= 1;
    assert!(matches!(
        log.stage_prefix(false, chunks[1].0, &damaged),
        Err(LogError::InvalidBatch(_))
    ));
    let skipped = log.stage_prefix(false, chunks[2].0, &chunks[2].1);
    assert!(matches!(skipped, Err(LogError::StagedMismatch { .. })));
    let shifted = log.stage_prefix(false, Offset(chunks[1].0.0 + 1), &chunks[1].1);
    assert!(matches!(shifted, Err(LogError::NonContiguous { .. })));
    assert_eq!(
        log.staged_end(),
        staged_end,
        "refused chunks change nothing"
    );
    // Other batches at the staged offsets: refused unless `first`.
    let other = append(&mut PartitionLog::in_memory(config()), 7, 2, 0, 1);
    let conflicting = log.stage_prefix(false, Offset(0), &other);
    assert!(matches!(conflicting, Err(LogError::StagedMismatch { .. })));
    assert_eq!(
        log.stage_prefix(true, Offset(0), &other).unwrap(),
        StageOutcome::Staged
    );
    assert_eq!(log.staged_end(), Some(Offset(2)), "started over");
    let wrong_floor = log.finish_restore(Term(1), 5);
    assert!(matches!(
        wrong_floor,
        Err(LogError::RaftIndexNonContiguous { .. })
    ));
    log.discard_staged().unwrap();
    assert_eq!(log.staged_end(), None);
    assert!(names_with(&*fixture.storage, ".staged").is_empty());
    assert_eq!(read_all(&log, 1 << 20), live, "the live log is untouched");
}

/// A crash after each step of `finish_restore` (the manifest, each delete
/// and rename, the syncs, the log start) leaves, after recovery, either
/// the old log with the complete staged prefix, where calling it again
/// finishes, or the restored log; both occur, and no swap file is left.
pub fn a_crash_at_any_step_of_a_restore_leaves_old_or_restored(factory: Factory) {
    let (source, chunks) = source_chunks();
    let prefix = read_all(&source, 1 << 20);
    let (mut saw_old, mut saw_new) = (false, false);
    // Each round allows one more mutation; a restore makes fewer than 400.
    for budget in 0..400 {
        let fixture = factory();
        let failing = FailAfter::new(fixture.storage.clone());
        let mut log = PartitionLog::open_with(failing.clone(), config()).expect("open");
        write_live(&mut log);
        log.sync().unwrap();
        let live = read_all(&log, 1 << 20);
        stage_all(&mut log, &chunks);
        failing.budget.store(budget, Ordering::SeqCst);
        let outcome = log.finish_restore(Term(0), 0);
        drop(log);
        if outcome.is_ok() {
            assert!(saw_old && saw_new, "a crash left the old and the new log");
            let log = fixture.open(config());
            assert_eq!(read_all(&log, 1 << 20), prefix);
            return;
        }
        if let Some(memory) = &fixture.memory {
            memory.crash();
        }
        let mut log = fixture.open(config());
        assert!(names_with(&*fixture.storage, "log-swap").is_empty());
        if log.staged_end().is_some() {
            assert_eq!(read_all(&log, 1 << 20), live, "budget {budget}");
            assert_eq!(log.staged_end(), Some(source.next_offset()));
            log.finish_restore(Term(0), 0).expect("finish again");
            saw_old = true;
        } else {
            saw_new = true;
        }
        assert_eq!(read_all(&log, 1 << 20), prefix, "budget {budget}");
        assert!(names_with(&*fixture.storage, ".staged").is_empty());
    }
    panic!("the restore never completed within the budget");
}
