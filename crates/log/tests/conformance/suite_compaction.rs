//! Conformance: log compaction (decision 0017 §6-7) on every backend. A
//! compacted log serves exactly the model's records at their offsets, a
//! read at a removed offset leads to the next survivor, Raft lookups stay
//! consistent, and a crash at any step of the segment swap leaves the old
//! or the new log, never a mix or a loss.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use citystream_log::{CompactionParams, LogConfig, Offset, PartitionLog, Term};
use citystream_record::{
    BatchBuilder, BatchIter, crc32c, hlc_from_parts, hlc_physical_ms, set_base_hlc,
};

use crate::common::*;

/// A record as a reader sees it: offset, key, value, HLC.
type RecordView = (u64, Vec<u8>, Option<Vec<u8>>, u64);

const RETENTION_MS: u64 = 100;

fn params() -> CompactionParams {
    CompactionParams {
        tombstone_retention_ms: RETENTION_MS,
        key_map_bytes_max: 1 << 20,
        dirty_ratio_min_percent: 0,
    }
}

fn config() -> LogConfig {
    small_config(900)
}

/// Appends 30 batches of 1-3 records over 5 keys, one record in six a
/// tombstone, 10 ms of log time apart; several segments.
fn write_keyed_log(log: &mut PartitionLog) {
    for i in 0..30u64 {
        append_keyed(log, i, 5);
    }
    log.sync().expect("sync");
    assert!(log.segment_count() >= 3, "the log spans several segments");
}

/// Appends batch number `i`: 1-3 records over `keys` keys, one record in
/// six a tombstone, timestamp `1000 + i` and log time `1000 + 10 i` ms.
fn append_keyed(log: &mut PartitionLog, i: u64, keys: u64) {
    let mut builder = BatchBuilder::new();
    for j in 0..1 + i % 3 {
        let key = format!("key-{}", (i * 7 + j * 3) % keys);
        let value = format!("value-{i}-{j}");
        let value = (!(i + j).is_multiple_of(6)).then_some(value.as_bytes());
        let timestamp_ms = 1_000 + i as i64;
        builder
            .push_record(timestamp_ms, Some(key.as_bytes()), value, &[])
            .expect("push");
    }
    let mut bytes = builder.finish_vec();
    set_base_hlc(&mut bytes, hlc_from_parts(1_000 + 10 * i as i64, 0));
    log.append(&mut bytes, Term(1)).expect("append");
}

fn records(batches: &[Bytes]) -> Vec<RecordView> {
    let mut out = Vec::new();
    for bytes in batches {
        let batch = BatchIter::new(bytes.clone()).next().unwrap().unwrap();
        for r in batch.records() {
            let value = r.value.map(<[u8]>::to_vec);
            out.push((r.offset, r.key.unwrap().to_vec(), value, r.hlc));
        }
    }
    out
}

/// The model of §2: below `horizon` keep the newest record per key and
/// drop tombstones at least the retention older than the newest HLC.
fn model(original: &[Bytes], horizon: u64) -> Vec<RecordView> {
    let reference_ms = original
        .iter()
        .map(|b| header(b))
        .filter(|h| h.next_offset() <= horizon)
        .map(|h| hlc_physical_ms(h.last_hlc()))
        .max();
    let all = records(original);
    let removed = |at: usize| {
        let (offset, key, value, hlc) = &all[at];
        let superseded = all[at + 1..].iter().any(|r| r.0 < horizon && r.1 == *key);
        let expired = value.is_none()
            && reference_ms.is_some_and(|r| hlc_physical_ms(*hlc) + RETENTION_MS as i64 <= r);
        *offset < horizon && (superseded || expired)
    };
    (0..all.len())
        .filter(|at| !removed(*at))
        .map(|at| all[at].clone())
        .collect()
}

/// The first record at or after `offset`, reading from `offset` as a
/// consumer does (skipping records below it).
fn next_record(log: &PartitionLog, offset: u64) -> Option<RecordView> {
    let mut from = Offset(offset);
    // Each read returns at least one batch, so this ends at the log end.
    while from < log.next_offset() {
        let read = log.read(from, 1 << 20).expect("read");
        let batches: Vec<Bytes> = BatchIter::new(read.bytes)
            .map(|b| b.unwrap().into_bytes())
            .collect();
        if let Some(found) = records(&batches).into_iter().find(|r| r.0 >= offset) {
            return Some(found);
        }
        from = Offset(header(batches.last().unwrap()).next_offset());
    }
    None
}

/// Compaction keeps the model's records at their offsets (in compacted and
/// gap batches), a read at any offset leads to the next survivor, the
/// active segment and Raft lookups stay right (none inside a gap), a
/// reopen serves the same, and a second pass writes nothing.
pub fn compaction_serves_the_newest_record_per_key(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(config());
    write_keyed_log(&mut log);
    let original = read_all(&log, 1 << 20);
    let (last_raft_index, next_offset) = (log.last_raft_index(), log.next_offset());
    let active = active_log(&*fixture.storage);
    let active_bytes = file_bytes(&*fixture.storage, &active);
    let summary = log.compact(log.next_offset(), &params()).expect("compact");
    let horizon = summary.horizon.0;
    assert!(summary.segments_rewritten >= 2 && summary.bytes_removed > 0);
    assert!(
        horizon > 0 && horizon < next_offset.0,
        "only closed segments"
    );
    let expected = model(&original, horizon);
    assert!(
        expected.len() < records(&original).len(),
        "the pass removed records"
    );
    for reopen in [false, true] {
        if reopen {
            drop(log);
            log = fixture.open(config());
        }
        assert_eq!(records(&read_all(&log, 1)), expected);
        assert_eq!(records(&read_all(&log, 1 << 20)), expected);
        assert_eq!(
            (log.last_raft_index(), log.next_offset()),
            (last_raft_index, next_offset)
        );
        for offset in 0..next_offset.0 {
            let survivor = expected.iter().find(|r| r.0 >= offset).cloned();
            assert_eq!(next_record(&log, offset), survivor, "read at {offset}");
        }
        let served: Vec<_> = read_all(&log, 1 << 20).iter().map(|b| header(b)).collect();
        assert!(served.iter().any(|h| h.is_compacted() && !h.is_gap()));
        let gap = served
            .windows(2)
            .find(|pair| pair[1].is_gap() && pair[1].raft_index > pair[0].raft_index + 1)
            .map(|pair| pair[1])
            .expect("a run of removed batches became one gap");
        assert_eq!(log.locate_raft_index(gap.raft_index - 1).unwrap(), None);
        for h in served {
            assert_eq!(log.locate_raft_index(h.raft_index).unwrap(), Some(h));
        }
        for raft_index in 1..=last_raft_index {
            let found = log.locate_raft_index(raft_index).unwrap();
            assert!(
                found.is_none_or(|h| h.raft_index == raft_index),
                "index {raft_index}"
            );
        }
    }
    assert_eq!(file_bytes(&*fixture.storage, &active), active_bytes);
    let again = log
        .compact(log.next_offset(), &params())
        .expect("compact again");
    assert_eq!((again.horizon.0, again.segments_rewritten), (horizon, 0));
    assert!(names_with(&*fixture.storage, ".cleaned").is_empty());
    assert_eq!(
        log.clean_end(),
        Offset(horizon),
        "the clean point is stored"
    );
}

/// A crash after each step of a pass (writing `.cleaned`, the manifest,
/// each delete and rename, the syncs, the reopen) leaves, after recovery,
/// either the old log or the compacted one, and no leftover file; both
/// outcomes occur.
pub fn a_crash_at_any_step_of_the_swap_leaves_old_or_new(factory: Factory) {
    let (mut saw_old, mut saw_new) = (false, false);
    // Each round allows one more mutation; the pass makes fewer than 200.
    for budget in 0..200 {
        let fixture = factory();
        let failing = FailAfter::new(fixture.storage.clone());
        let mut log = PartitionLog::open_with(failing.clone(), config()).expect("open");
        write_keyed_log(&mut log);
        let original = read_all(&log, 1 << 20);
        failing.budget.store(budget, Ordering::SeqCst);
        let outcome = log.compact(log.next_offset(), &params());
        drop(log);
        let horizon = match outcome {
            Ok(summary) => summary.horizon.0,
            Err(_) => {
                if let Some(memory) = &fixture.memory {
                    memory.crash();
                }
                let mut log = fixture.open(config());
                let served = records(&read_all(&log, 1 << 20));
                let compacted = log.compact(log.next_offset(), &params()).unwrap().horizon.0;
                if served == records(&original) {
                    saw_old = true;
                } else {
                    assert_eq!(served, model(&original, compacted), "budget {budget}");
                    saw_new = true;
                }
                for suffix in [".cleaned", "log-swap"] {
                    assert!(names_with(&*fixture.storage, suffix).is_empty(), "{suffix}");
                }
                continue;
            }
        };
        assert!(saw_old && saw_new, "a crash left the old and the new log");
        let log = fixture.open(config());
        assert_eq!(records(&read_all(&log, 1 << 20)), model(&original, horizon));
        return;
    }
    panic!("the pass never completed within the budget");
}

/// A commit after retention (here a purge) or a truncate removed or
/// changed an input changes nothing, deletes the pass's output and says
/// so; a new pass then works.
pub fn a_commit_after_the_log_changed_does_nothing(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(config());
    write_keyed_log(&mut log);
    for change in ["purge", "truncate"] {
        let plan = log
            .plan_compaction(log.next_offset(), &params())
            .expect("a plan");
        let second = plan.groups()[0][0].next_offset;
        let cleaned = plan.run().expect("run");
        assert!(!names_with(&*fixture.storage, ".cleaned").is_empty());
        match change {
            "purge" => log.purge_before(second).expect("purge"),
            _ => log
                .truncate_after(Offset(log.next_offset().0 - 2))
                .expect("truncate"),
        }
        let before = read_all(&log, 1 << 20);
        let summary = log.commit_compaction(cleaned).expect("commit");
        assert!(summary.abandoned, "{change}");
        assert_eq!(summary.segments_rewritten, 0);
        assert_eq!(log.clean_end(), Offset(0), "{change}: no clean point");
        assert_eq!(read_all(&log, 1 << 20), before, "{change}");
        assert!(names_with(&*fixture.storage, ".cleaned").is_empty());
    }
    let summary = log.compact(log.next_offset(), &params()).expect("compact");
    assert!(!summary.abandoned && summary.segments_rewritten > 0);
}

/// Batches appended between the plan and the commit (the rewrite runs
/// without the write lock) are kept, after the compacted prefix.
pub fn appends_between_plan_and_commit_are_kept(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(config());
    for i in 0..20 {
        append_keyed(&mut log, i, 5);
    }
    let plan = log
        .plan_compaction(log.next_offset(), &params())
        .expect("a plan");
    let cleaned = plan.run().expect("run");
    for i in 20..30 {
        append_keyed(&mut log, i, 5);
    }
    let original = read_all(&log, 1 << 20);
    let summary = log.commit_compaction(cleaned).expect("commit");
    assert!(!summary.abandoned && summary.segments_rewritten > 0);
    let expected = model(&original, summary.horizon.0);
    assert_eq!(records(&read_all(&log, 1 << 20)), expected);
    let end = header(original.last().unwrap()).next_offset();
    assert_eq!(log.next_offset(), Offset(end));
    drop(log);
    let log = fixture.open(config());
    assert_eq!(records(&read_all(&log, 1 << 20)), expected);
}

/// A key map of four keys over a prefix of 40 keys still converges: each
/// pass maps only from the clean point, reaches a bit further, and after
/// several passes the log equals one big pass.
pub fn a_tiny_key_map_converges_to_one_big_pass(factory: Factory) {
    let write = |log: &mut PartitionLog| {
        for i in 0..60 {
            append_keyed(log, i, 40);
        }
    };
    let (big, small) = (factory(), factory());
    let mut reference = big.open(config());
    write(&mut reference);
    let target = reference
        .compact(reference.next_offset(), &params())
        .unwrap();
    let mut log = small.open(config());
    write(&mut log);
    let tiny = CompactionParams {
        key_map_bytes_max: CompactionParams::key_map_bytes_for(4),
        dirty_ratio_min_percent: 0,
        ..params()
    };
    let mut passes = 0;
    // Each pass maps at least one batch (at most 3 keys), so this ends.
    while log.clean_end() < target.horizon {
        let summary = log.compact(log.next_offset(), &tiny).expect("compact");
        assert_eq!(summary.horizon, log.clean_end());
        passes += 1;
        assert!(passes <= 60, "a pass made no progress");
    }
    assert!(passes > 5, "the map was too small for one pass ({passes})");
    let expected = records(&read_all(&reference, 1 << 20));
    assert_eq!(records(&read_all(&log, 1 << 20)), expected);
}

/// The clean point is only an optimisation: with the `log-start-offset`
/// file rewritten in version 1 (clean end = start) or deleted, the next
/// pass maps everything again and serves the same records.
pub fn a_stale_or_missing_clean_point_gives_the_same_result(factory: Factory) {
    let mut v1 = Vec::new();
    for field in [0u64, 0, 0] {
        v1.extend_from_slice(&field.to_le_bytes());
    }
    v1.extend_from_slice(&crc32c(&v1).to_le_bytes());
    let mut results = Vec::new();
    for damage in ["none", "version 1", "missing"] {
        let fixture = factory();
        let mut log = fixture.open(config());
        for i in 0..15 {
            append_keyed(&mut log, i, 5);
        }
        let first = log.compact(log.next_offset(), &params()).unwrap();
        assert!(first.horizon > Offset(0));
        drop(log);
        match damage {
            "version 1" => fixture
                .storage
                .write_atomic("log-start-offset", &v1)
                .unwrap(),
            "missing" => fixture.storage.delete("log-start-offset").unwrap(),
            _ => {}
        }
        let mut log = fixture.open(config());
        let expected_clean = if damage == "none" {
            first.horizon
        } else {
            Offset(0)
        };
        assert_eq!(log.clean_end(), expected_clean, "{damage}");
        for i in 15..30 {
            append_keyed(&mut log, i, 5);
        }
        log.compact(log.next_offset(), &params()).unwrap();
        results.push(records(&read_all(&log, 1 << 20)));
    }
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
}

/// Repeated passes over a growing log merge their small outputs: the
/// segment count stays bounded instead of growing with every roll.
pub fn repeated_passes_keep_the_segment_count_bounded(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(small_config(400));
    let mut original = Vec::new();
    let mut horizon = 0;
    for round in 0..40u64 {
        let before = read_all(&log, 1 << 20).len();
        for i in 0..4 {
            append_keyed(&mut log, round * 4 + i, 4);
        }
        original.extend(read_all(&log, 1 << 20).split_off(before));
        horizon = log.compact(log.next_offset(), &params()).unwrap().horizon.0;
        // About one segment per round is rolled; without merging, forty.
        assert!(
            log.segment_count() <= 6,
            "round {round}: {} segments",
            log.segment_count()
        );
    }
    assert!(horizon > 0);
    assert_eq!(records(&read_all(&log, 1 << 20)), model(&original, horizon));
}

/// `offset_for_timestamp` landing on a batch compaction removed whole (a
/// GAP keeps the time of what it covers) answers the next survivor.
pub fn offset_for_timestamp_skips_a_gap_to_the_next_survivor(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(config());
    write_keyed_log(&mut log);
    let original = read_all(&log, 1 << 20);
    let horizon = log.compact(log.next_offset(), &params()).unwrap().horizon.0;
    let expected = model(&original, horizon);
    let served: Vec<_> = read_all(&log, 1 << 20).iter().map(|b| header(b)).collect();
    let gap = served
        .iter()
        .find(|h| h.is_gap() && h.base_offset > 0)
        .expect("a gap");
    let survivor = expected
        .iter()
        .find(|r| r.0 >= gap.next_offset())
        .expect("a survivor after the gap");
    // Every record's timestamp is 1000 + its batch number, so the first
    // timestamp the gap covers is its own base timestamp.
    let found = log.offset_for_timestamp(gap.base_timestamp_ms).unwrap();
    assert_eq!(found, Some(Offset(survivor.0)));
}

/// The compaction point: none while nothing past the clean point is
/// closed; after a pass, a little new dirty data is not enough at a 50 %
/// dirty ratio (the pass would rewrite mostly clean bytes) but is at 0 %;
/// once as much is dirty as clean, it is due again.
pub fn the_dirty_ratio_holds_a_pass_back_until_enough_is_dirty(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(small_config(400));
    assert!(log.compaction_point(i64::MAX, 0).is_none(), "an empty log");
    for i in 0..24u64 {
        append_keyed(&mut log, i, 50);
    }
    let point = log.compaction_point(i64::MAX, 50).expect("all dirty");
    log.compact(Offset(point.next_offset()), &params()).unwrap();
    assert_eq!(log.clean_end().0, point.next_offset());
    assert!(
        log.compaction_point(i64::MAX, 0).is_none(),
        "nothing new is closed"
    );

    // One more closed segment past the clean point.
    let segments = log.segment_count();
    let mut i = 24;
    while log.segment_count() < segments + 2 {
        append_keyed(&mut log, i, 50);
        i += 1;
    }
    assert!(
        log.compaction_point(i64::MAX, 0).is_some(),
        "some dirty data"
    );
    assert!(
        log.compaction_point(i64::MAX, 50).is_none(),
        "one dirty segment of several is below 50 %"
    );
    assert!(
        log.compaction_point(i64::MAX, 100).is_none(),
        "and below 100 %"
    );
    // Closing as many dirty bytes as there are clean ones makes it due.
    let clean_bytes = log.size_bytes();
    while log.size_bytes() < 3 * clean_bytes {
        append_keyed(&mut log, i, 50);
        i += 1;
    }
    assert!(
        log.compaction_point(i64::MAX, 50).is_some(),
        "half dirty or more"
    );
    // Only closed segments older than the cutoff count.
    assert!(log.compaction_point(0, 0).is_none(), "nothing is that old");
}

/// A commit that fails part-way (a transient storage error at any step)
/// followed by `reopen` on the same log serves the old log or the
/// compacted one, as an open after a crash would.
pub fn a_failed_commit_then_reopen_serves_old_or_new(factory: Factory) {
    for budget in 0..200 {
        let fixture = factory();
        let failing = FailAfter::new(fixture.storage.clone());
        let mut log = PartitionLog::open_with(failing.clone(), config()).expect("open");
        write_keyed_log(&mut log);
        let original = read_all(&log, 1 << 20);
        let plan = log
            .plan_compaction(log.next_offset(), &params())
            .expect("a pass is due");
        let cleaned = plan.run().expect("the rewrite");
        failing.budget.store(budget, Ordering::SeqCst);
        let committed = log.commit_compaction(cleaned);
        failing.budget.store(i64::MAX, Ordering::SeqCst);
        let Err(_) = committed else {
            return;
        };
        log.reopen().expect("reopen after the failed commit");
        let served = records(&read_all(&log, 1 << 20));
        if served != records(&original) {
            let horizon = log.clean_end().0;
            assert_eq!(served, model(&original, horizon), "budget {budget}");
        }
        // And the log goes on: a new pass completes.
        log.compact(log.next_offset(), &params())
            .expect("a pass after reopen");
    }
    panic!("the commit never completed within the budget");
}
