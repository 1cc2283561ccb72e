//! Property test of compaction on a whole log: random appends of keyed
//! records and tombstones, passes at random horizons, reopens and (in
//! memory) crashes; after every step the log serves exactly the records of
//! the model of decision 0017 §2 at the largest horizon reached so far
//! (passes commute, so that is all that matters). Passes use key maps from
//! tiny to ample (a tiny one stops early; the clean point lets the next go
//! on), and some run split, with an append between the run and the commit.

mod common;

use bytes::Bytes;
use citystream_log::{CompactionParams, FsyncPolicy, LogConfig, Offset, PartitionLog, Term};
use citystream_record::{BatchBuilder, BatchIter, hlc_from_parts, hlc_physical_ms, set_base_hlc};
use common::*;
use proptest::prelude::*;

const RETENTION_MS: i64 = 50;

/// A record as a reader sees it: offset, key, value, HLC.
type RecordView = (u64, Vec<u8>, Option<Vec<u8>>, u64);

#[derive(Debug, Clone)]
enum Op {
    /// Records as (key, tombstone), `step_ms` of log time after the last.
    Append {
        records: Vec<(u8, bool)>,
        step_ms: i64,
    },
    /// A pass at the boundary after this fraction of the batches, with a
    /// key map of `keys_max` keys; `split`: plan and run, append a batch,
    /// then commit.
    Compact {
        fraction: f64,
        keys_max: usize,
        split: bool,
    },
    Reopen,
    /// Drop the log and lose unsynced bytes (memory backend only).
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    let record = (0u8..8, prop::bool::weighted(0.1));
    prop_oneof![
        8 => (prop::collection::vec(record, 1..4), 1i64..30)
            .prop_map(|(records, step_ms)| Op::Append { records, step_ms }),
        2 => (0.0f64..=1.0, prop_oneof![2..12usize, Just(1 << 16)], prop::bool::ANY)
            .prop_map(|(fraction, keys_max, split)| Op::Compact { fraction, keys_max, split }),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
    ]
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes_max: 400,
        index_interval_bytes: 100,
        // A crash then loses nothing acknowledged: what it tests is that
        // rewritten segments recover.
        fsync: FsyncPolicy::Always,
        retention_ms: None,
        retention_bytes: None,
        segment_roll_ms: None,
        compacted: false,
        compaction_lag_ms: 0,
        tombstone_retention_ms: 86_400_000,
    }
}

/// Every batch appended, as first stored, and the largest horizon reached.
#[derive(Debug, Default)]
struct Model {
    batches: Vec<Bytes>,
    horizon: u64,
    time_ms: i64,
}

fn records(batches: &[Bytes]) -> Vec<RecordView> {
    let mut out = Vec::new();
    for batch in BatchIter::new(batches.concat().into()) {
        for r in batch.expect("valid batch").records() {
            let value = r.value.map(<[u8]>::to_vec);
            out.push((r.offset, r.key.expect("keyed").to_vec(), value, r.hlc));
        }
    }
    out
}

/// The model of §2 over the original batches at `horizon`.
fn model_compact(original: &[Bytes], horizon: u64) -> Vec<RecordView> {
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
            && reference_ms.is_some_and(|r| hlc_physical_ms(*hlc) + RETENTION_MS <= r);
        *offset < horizon && (superseded || expired)
    };
    (0..all.len())
        .filter(|at| !removed(*at))
        .map(|at| all[at].clone())
        .collect()
}

/// Appends a batch of `records`, `step_ms` of log time after the last.
fn append(log: &mut PartitionLog, model: &mut Model, records: &[(u8, bool)], step_ms: i64) {
    model.time_ms += step_ms;
    let mut builder = BatchBuilder::new();
    for (key, tombstone) in records {
        let value = format!("v{}", model.time_ms);
        let value = (!tombstone).then_some(value.as_bytes());
        builder
            .push_record(model.time_ms, Some(&[b'k', *key]), value, &[])
            .expect("push");
    }
    let mut bytes = builder.finish_vec();
    set_base_hlc(&mut bytes, hlc_from_parts(model.time_ms, 0));
    log.append(&mut bytes, Term(1)).expect("append");
    model.batches.push(Bytes::from(bytes));
}

/// A pass as `Op::Compact` describes it.
fn compact(log: &mut PartitionLog, model: &mut Model, fraction: f64, keys_max: usize, split: bool) {
    let count = (fraction * model.batches.len() as f64) as usize;
    let requested = count
        .checked_sub(1)
        .map_or(0, |last| header(&model.batches[last]).next_offset());
    let params = CompactionParams {
        tombstone_retention_ms: RETENTION_MS as u64,
        key_map_bytes_max: CompactionParams::key_map_bytes_for(keys_max),
        dirty_ratio_min_percent: 0,
    };
    let summary = match log.plan_compaction(Offset(requested), &params) {
        Some(plan) if split => {
            let cleaned = plan.run().expect("run");
            append(log, model, &[(0, false)], 1);
            log.commit_compaction(cleaned).expect("commit")
        }
        _ => log.compact(Offset(requested), &params).expect("compact"),
    };
    assert!(!summary.abandoned, "appends never abandon a pass");
    assert!(
        summary.horizon.0 <= requested,
        "a pass never goes past the horizon"
    );
    model.horizon = model.horizon.max(summary.horizon.0);
}

fn apply(fixture: &Fixture, log: &mut Option<PartitionLog>, model: &mut Model, op: &Op) {
    let current = log.as_mut().expect("open log");
    match op {
        Op::Append { records, step_ms } => append(current, model, records, *step_ms),
        Op::Compact {
            fraction,
            keys_max,
            split,
        } => compact(current, model, *fraction, *keys_max, *split),
        Op::Reopen => {
            *log = None;
            *log = Some(fixture.open(config()));
        }
        Op::Crash => {
            let Some(memory) = &fixture.memory else {
                return;
            };
            *log = None;
            memory.crash();
            *log = Some(fixture.open(config()));
        }
    }
}

fn check(log: &PartitionLog, model: &Model) {
    let end = model.batches.last().map_or(0, |b| header(b).next_offset());
    assert_eq!(log.next_offset(), Offset(end));
    assert_eq!(log.last_raft_index(), model.batches.len() as u64);
    assert_eq!(
        records(&read_all(log, 1)),
        model_compact(&model.batches, model.horizon)
    );
}

fn run(fixture: Fixture, ops: &[Op]) {
    let mut log = Some(fixture.open(config()));
    let mut model = Model {
        time_ms: 1_000,
        ..Model::default()
    };
    for op in ops {
        apply(&fixture, &mut log, &mut model, op);
        check(log.as_ref().expect("open log"), &model);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(48) })]

    /// The memory backend, crashes included, serves the model's records.
    #[test]
    fn compacted_memory_log_matches_the_model(ops in prop::collection::vec(op(), 1..60)) {
        run(memory_fixture(), &ops);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(8) })]

    /// The file backend (reopens, no crashes) serves the model's records.
    #[test]
    fn compacted_file_log_matches_the_model(ops in prop::collection::vec(op(), 1..40)) {
        run(file_fixture(), &ops);
    }
}
