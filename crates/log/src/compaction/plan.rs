//! The pure decision of a compaction pass (decision 0017 §2): which records
//! of the batches below a horizon `H` survive. Fed the batches in log
//! order, a [`Planner`] maps every key to its newest offset and tracks the
//! reference time `ref(H)`; then [`Planner::keep_flags`] says, per batch,
//! which records stay:
//!
//! - a record is *superseded* if a record with the same key sits at a
//!   larger offset below `H`;
//! - a tombstone (null value) is *expired* if its HLC's physical
//!   milliseconds plus `tombstone_retention_ms` reach `ref(H)`, the largest
//!   physical milliseconds of any batch's `last_hlc()` below `H`: log time,
//!   never a replica's clock;
//! - every control record below `H` goes;
//! - a record without a key is never superseded (it has nothing to be
//!   superseded by), only expired if it is a tombstone;
//! - batches at or above `H` are kept whole.
//!
//! The section below the *clean point* (where an earlier pass ended) is
//! already compacted, so each of its keys occurs once: it is not mapped
//! (its batches need not even be observed; the stored reference time
//! stands for them), and one of its records is superseded exactly when its
//! key is mapped from the dirty section `[clean point, H)`. A clean point
//! of 0 maps everything; any lower clean point gives the same result with
//! more work, and a batch straddling it counts as dirty.
//!
//! If the key map fills, the horizon drops to the base offset of the first
//! batch that did not fit: the pass is then exactly `C_H'` for that smaller
//! `H'`, and a later pass goes on (§2, "a memory-bounded pass is just a
//! smaller H").
//!
//! This file reads no storage and writes no batch: the rewrite is
//! `rewrite.rs`, the files are the caller's.

use citystream_record::{BatchHeader, RecordBatch, hlc_physical_ms};

use super::CompactionParams;
use super::key_map::KeyMap;

/// The state of one pass's planning: the key map, the effective horizon
/// and the reference time.
#[derive(Debug)]
pub(crate) struct Planner {
    keys: KeyMap,
    /// Below this the log is already compacted (an earlier pass's horizon).
    clean_offset: u64,
    /// Offsets below this are compacted; lowered if the map fills.
    horizon_offset: u64,
    /// `ref(H)`: physical ms of the largest `last_hlc()` observed below
    /// the horizon (`i64::MIN` before any).
    reference_ms: i64,
    tombstone_retention_ms: u64,
    /// The map refused a batch: nothing more is observed.
    full: bool,
}

impl Planner {
    /// A planner for the horizon `horizon_offset` (a batch boundary) over
    /// a log compacted below `clean_offset`, whose batches there reach the
    /// reference time `clean_reference_ms` (`i64::MIN`: none known).
    pub fn new(
        clean_offset: u64,
        clean_reference_ms: i64,
        horizon_offset: u64,
        params: &CompactionParams,
    ) -> Planner {
        assert!(
            clean_offset <= horizon_offset,
            "the clean point is below the horizon"
        );
        Planner {
            keys: KeyMap::new(params.key_map_bytes_max),
            clean_offset,
            horizon_offset,
            reference_ms: clean_reference_ms,
            tombstone_retention_ms: params.tombstone_retention_ms,
            full: false,
        }
    }

    /// Observes the next batch of the log (batches must come in log order,
    /// from the first batch to compact). Batches not wholly below the
    /// horizon are ignored; a batch whose keys might not fit in the map
    /// lowers the horizon to its base offset.
    pub fn observe(&mut self, batch: &RecordBatch) {
        let header = batch.header();
        if self.full || header.next_offset() > self.horizon_offset {
            assert!(
                header.base_offset >= self.horizon_offset || self.full,
                "the compaction horizon {} is inside the batch at {}",
                self.horizon_offset,
                header.base_offset
            );
            return;
        }
        let clean = header.next_offset() <= self.clean_offset;
        if !clean && !self.keys.has_room_for(header.record_count as usize) {
            self.full = true;
            self.horizon_offset = header.base_offset;
            return;
        }
        self.reference_ms = self.reference_ms.max(hlc_physical_ms(header.last_hlc()));
        if clean || header.is_control() {
            return;
        }
        for record in batch.records() {
            if let Some(key) = record.key {
                self.keys.insert(key, record.offset);
            }
        }
    }

    /// The effective horizon: offsets below it are compacted.
    pub fn horizon_offset(&self) -> u64 {
        self.horizon_offset
    }

    /// `ref(H)` at the effective horizon (`i64::MIN` if no batch below).
    pub fn reference_ms(&self) -> i64 {
        self.reference_ms
    }

    /// Whether a batch lies wholly below the effective horizon (and so may
    /// be rewritten or merged into a gap).
    pub fn is_below_horizon(&self, header: &BatchHeader) -> bool {
        header.next_offset() <= self.horizon_offset
    }

    /// One flag per record of `batch`: whether it survives. Every batch
    /// below the horizon must have been observed first.
    pub fn keep_flags(&self, batch: &RecordBatch) -> Vec<bool> {
        let header = batch.header();
        let count = header.record_count as usize;
        if header.next_offset() > self.horizon_offset {
            return vec![true; count];
        }
        if header.is_control() {
            return vec![false; count];
        }
        let flags: Vec<bool> = batch
            .records()
            .map(|record| {
                let superseded = record.key.is_some_and(|key| {
                    let newest = self.keys.newest_offset(key);
                    assert!(
                        header.next_offset() <= self.clean_offset
                            || newest.is_some_and(|newest| newest >= record.offset),
                        "a batch of the dirty section was not observed"
                    );
                    newest.is_some_and(|newest| newest > record.offset)
                });
                let expired = record.value.is_none() && self.is_expired(record.hlc);
                !superseded && !expired
            })
            .collect();
        assert_eq!(flags.len(), count, "one flag per record");
        flags
    }

    /// Whether a tombstone stamped `hlc` is past its retention at `ref(H)`.
    fn is_expired(&self, hlc: u64) -> bool {
        let retention_ms = i64::try_from(self.tombstone_retention_ms).unwrap_or(i64::MAX);
        hlc_physical_ms(hlc).saturating_add(retention_ms) <= self.reference_ms
    }
}
