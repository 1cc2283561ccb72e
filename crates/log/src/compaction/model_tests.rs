//! Property tests of the pure pass (planner + rewrite) against the model of
//! decision 0017 §2: below the horizon keep the newest record per key, drop
//! tombstones older than the retention (in log time) and control records,
//! keep order and offsets; and the pass is idempotent and commutes
//! (`C_H2 ∘ C_H1 = C_H2` for `H1 <= H2`), also when the key map is small.

use bytes::Bytes;
use citystream_record::{
    BatchBuilder, RecordBatch, attributes, hlc_from_parts, hlc_physical_ms, set_base_hlc,
    set_base_offset, set_raft_index,
};
use proptest::prelude::*;

use super::CompactionParams;
use super::plan::Planner;
use super::rewrite::rewrite_batches;

/// One generated record: key index (None: no key) and whether it is a
/// tombstone.
type RecordSpec = (Option<u8>, bool);

/// One generated batch: whether it is a control batch, the milliseconds
/// since the previous batch, its records.
type BatchSpec = (bool, i64, Vec<RecordSpec>);

/// A record as a reader sees it: offset, key, value, HLC, timestamp.
type RecordView = (u64, Option<Vec<u8>>, Option<Vec<u8>>, u64, i64);

fn batch_spec() -> impl Strategy<Value = BatchSpec> {
    let record = (
        prop_oneof![1 => Just(None), 9 => (0u8..6).prop_map(Some)],
        prop::bool::weighted(0.2),
    );
    (
        prop::bool::weighted(0.1),
        1i64..40,
        prop::collection::vec(record, 1..5),
    )
}

/// Builds the log: dense offsets and Raft indexes, HLCs growing with time.
fn build_log(specs: &[BatchSpec]) -> Vec<RecordBatch> {
    let (mut offset, mut time_ms) = (0u64, 1_000i64);
    let mut batches = Vec::new();
    for (index, (control, step_ms, records)) in specs.iter().enumerate() {
        time_ms += step_ms;
        let mut builder = BatchBuilder::new();
        if *control {
            builder.set_attributes(attributes::CONTROL);
        }
        for (position, (key, tombstone)) in records.iter().enumerate() {
            let key = key.map(|k| vec![b'k', k]);
            let value = format!("v{offset}-{position}");
            let value = (!tombstone).then_some(value.as_bytes());
            builder
                .push_record(time_ms, key.as_deref(), value, &[])
                .expect("push");
        }
        let mut bytes = builder.finish_vec();
        set_base_offset(&mut bytes, offset);
        set_raft_index(&mut bytes, index as u64 + 1);
        set_base_hlc(&mut bytes, hlc_from_parts(time_ms, 0));
        let batch = RecordBatch::from_bytes(Bytes::from(bytes)).expect("valid batch");
        offset = batch.header().next_offset();
        batches.push(batch);
    }
    batches
}

fn view(batches: &[RecordBatch]) -> Vec<RecordView> {
    batches
        .iter()
        .flat_map(|batch| {
            batch
                .records()
                .map(|r| {
                    let key = r.key.map(<[u8]>::to_vec);
                    let value = r.value.map(<[u8]>::to_vec);
                    (r.offset, key, value, r.hlc, r.timestamp_ms)
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The model of §2 over the original log: the records that survive `C_H`.
fn model_compact(log: &[RecordBatch], horizon: u64, retention_ms: i64) -> Vec<RecordView> {
    let below = |batch: &&RecordBatch| batch.header().next_offset() <= horizon;
    let reference_ms = log
        .iter()
        .filter(below)
        .map(|b| hlc_physical_ms(b.header().last_hlc()))
        .max();
    let records: Vec<(bool, RecordView)> = log
        .iter()
        .flat_map(|b| {
            view(std::slice::from_ref(b))
                .into_iter()
                .map(|r| (b.header().is_control(), r))
        })
        .collect();
    let removed = |at: usize| {
        let (control, (offset, key, value, hlc, _)) = &records[at];
        if *offset >= horizon {
            return false;
        }
        let superseded = key.is_some()
            && records[at + 1..]
                .iter()
                .any(|(c, r)| !c && r.0 < horizon && r.1 == *key);
        let expired = value.is_none()
            && reference_ms
                .is_some_and(|reference| hlc_physical_ms(*hlc) + retention_ms <= reference);
        *control || superseded || expired
    };
    (0..records.len())
        .filter(|at| !removed(*at))
        .map(|at| records[at].1.clone())
        .collect()
}

/// One pass over `log` as a single segment, compacted below `clean` with
/// the reference time `clean_reference_ms` there; as the log does, only
/// the dirty section is observed. Returns the output, the effective
/// horizon and its reference time (the next pass's clean point).
fn compact(
    log: &[RecordBatch],
    (clean, clean_reference_ms): (u64, i64),
    horizon: u64,
    params: &CompactionParams,
) -> (Vec<RecordBatch>, (u64, i64)) {
    let mut planner = Planner::new(clean, clean_reference_ms, horizon, params);
    for batch in log.iter().filter(|b| b.header().next_offset() > clean) {
        planner.observe(batch);
    }
    let output = rewrite_batches(log, &planner)
        .into_iter()
        .map(|bytes| RecordBatch::from_bytes(bytes).expect("rewritten batches are valid"))
        .collect();
    (output, (planner.horizon_offset(), planner.reference_ms()))
}

/// Nothing compacted yet.
const DIRTY: (u64, i64) = (0, i64::MIN);

/// The batch boundary after the first `count` batches.
fn boundary(log: &[RecordBatch], count: usize) -> u64 {
    count
        .checked_sub(1)
        .map_or(0, |last| log[last].header().next_offset())
}

fn params(tombstone_retention_ms: u64, key_map_entries_max: usize) -> CompactionParams {
    CompactionParams {
        tombstone_retention_ms,
        key_map_bytes_max: CompactionParams::key_map_bytes_for(key_map_entries_max),
        dirty_ratio_min_percent: 0,
    }
}

proptest! {
    /// A pass keeps exactly the model's records, at their offsets, keeps
    /// batches at or above the horizon byte for byte, and a second pass at
    /// the same horizon changes no byte.
    #[test]
    fn a_pass_matches_the_model(
        specs in prop::collection::vec(batch_spec(), 1..25),
        horizon_fraction in 0.0f64..=1.0,
        retention_ms in 0u64..200,
    ) {
        let log = build_log(&specs);
        let horizon = boundary(&log, (horizon_fraction * log.len() as f64) as usize);
        let params = params(retention_ms, 1 << 20);
        let (output, (effective, _)) = compact(&log, DIRTY, horizon, &params);
        prop_assert_eq!(effective, horizon);
        prop_assert_eq!(view(&output), model_compact(&log, horizon, retention_ms as i64));
        let above: Vec<&RecordBatch> = log.iter().filter(|b| b.header().base_offset >= horizon).collect();
        let output_above: Vec<&RecordBatch> = output.iter().filter(|b| b.header().base_offset >= horizon).collect();
        prop_assert_eq!(above, output_above);
        let (again, _) = compact(&output, DIRTY, horizon, &params);
        prop_assert_eq!(again, output);
    }

    /// Passes commute: compacting at `H1` then at `H2 >= H1` serves the
    /// same records as compacting once at `H2`.
    #[test]
    fn passes_are_idempotent_and_commute(
        specs in prop::collection::vec(batch_spec(), 1..25),
        first_fraction in 0.0f64..=1.0,
        second_fraction in 0.0f64..=1.0,
        retention_ms in 0u64..200,
    ) {
        let log = build_log(&specs);
        let (low, high) = if first_fraction <= second_fraction {
            (first_fraction, second_fraction)
        } else {
            (second_fraction, first_fraction)
        };
        let first = boundary(&log, (low * log.len() as f64) as usize);
        let second = boundary(&log, (high * log.len() as f64) as usize);
        let params = params(retention_ms, 1 << 20);
        let (once, clean) = compact(&log, DIRTY, first, &params);
        prop_assert_eq!(clean.0, first);
        let (twice, _) = compact(&once, clean, second, &params);
        let (direct, _) = compact(&log, DIRTY, second, &params);
        prop_assert_eq!(view(&twice), view(&direct));
        prop_assert_eq!(view(&twice), model_compact(&log, second, retention_ms as i64));
        // A stale (lower) clean point only costs work: same records.
        let (stale, _) = compact(&once, DIRTY, second, &params);
        prop_assert_eq!(view(&stale), view(&direct));
        let (again, _) = compact(&twice, DIRTY, second, &params);
        prop_assert_eq!(view(&again), view(&twice));
    }

    /// A key map too small for the whole section lowers the horizon; each
    /// pass (mapping only from the previous pass's horizon, the clean
    /// point) is the model at its effective horizon, and repeated passes
    /// reach the requested one with the same result as one large pass.
    #[test]
    fn a_small_key_map_converges_over_several_passes(
        specs in prop::collection::vec(batch_spec(), 1..25),
        retention_ms in 0u64..200,
    ) {
        let log = build_log(&specs);
        let horizon = boundary(&log, log.len());
        // Four records at most per batch: every pass maps at least one batch.
        let small = params(retention_ms, 4);
        let mut current = log.clone();
        let mut clean = DIRTY;
        // Each pass moves the effective horizon by at least one batch.
        for _ in 0..=log.len() {
            let (output, reached) = compact(&current, clean, horizon, &small);
            prop_assert!(reached.0 >= clean.0, "the effective horizon never goes back");
            prop_assert_eq!(view(&output), model_compact(&log, reached.0, retention_ms as i64));
            (current, clean) = (output, reached);
            if clean.0 == horizon {
                break;
            }
        }
        prop_assert_eq!(clean.0, horizon);
        let (direct, _) = compact(&log, DIRTY, horizon, &params(retention_ms, 1 << 20));
        prop_assert_eq!(view(&current), view(&direct));
    }
}
