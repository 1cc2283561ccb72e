//! The crash test's workload, shared by the child that appends and the test
//! that checks: the batch appended at a base offset is a pure function of
//! that offset, so the checker can rebuild every expected byte.

use citystream_record::{BatchBuilder, set_base_offset, set_raft_index, set_term};

/// Records in a batch: 1 to this many.
const RECORDS_MAX: u64 = 8;
/// Largest ordinary value; one batch in `LARGE_EVERY` carries a value of
/// `LARGE_VALUE_BYTES` so that a kill can land inside a multi-page write.
const VALUE_BYTES_MAX: u64 = 300;
const LARGE_EVERY: u64 = 8;
const LARGE_VALUE_BYTES: usize = 20_000;
/// The term grows by one every this many offsets.
const OFFSETS_PER_TERM: u64 = 500;

/// A cheap deterministic hash (splitmix64's finaliser).
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

pub fn term_for(base_offset: u64) -> u64 {
    1 + base_offset / OFFSETS_PER_TERM
}

/// The batch appended at `base_offset`, before the log assigns offset and term.
pub fn batch_for(base_offset: u64) -> Vec<u8> {
    let count = 1 + mix(base_offset) % RECORDS_MAX;
    let mut builder = BatchBuilder::new();
    for i in 0..count {
        let offset = base_offset + i;
        let value_len = if i == 0 && mix(offset ^ 0xA5).is_multiple_of(LARGE_EVERY) {
            LARGE_VALUE_BYTES
        } else {
            (mix(offset) % VALUE_BYTES_MAX) as usize
        };
        let value: Vec<u8> = (0..value_len)
            .map(|j| (offset as usize + j) as u8)
            .collect();
        let key = offset.to_le_bytes();
        builder
            .push(offset as i64, Some(&key), &value, &[("offset", &key)])
            .expect("small records fit a batch");
    }
    builder.finish_vec()
}

/// The exact bytes the log stores for the batch at `base_offset`, the
/// `raft_index`-th batch of the log.
#[allow(dead_code)]
pub fn stored_batch(base_offset: u64, raft_index: u64) -> Vec<u8> {
    let mut batch = batch_for(base_offset);
    set_base_offset(&mut batch, base_offset);
    set_term(&mut batch, term_for(base_offset));
    set_raft_index(&mut batch, raft_index);
    batch
}
