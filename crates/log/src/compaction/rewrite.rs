//! Rewriting the batches of one segment as a compaction pass decided
//! (decision 0017 §2-3): a batch that keeps every record is copied
//! verbatim (its producer CRC intact), one that lost some becomes a
//! `COMPACTED` batch of its survivors ([`compact_batch`]), and each maximal
//! run of wholly removed batches becomes one header-only `GAP` batch
//! ([`gap_batch`]). A `GAP` batch of an earlier pass counts as wholly
//! removed, so it merges with its neighbours (and is rebuilt byte for byte
//! when alone).
//!
//! The output covers exactly the offsets of the input, starts at the same
//! base offset and keeps every survivor at its offset. This file is pure:
//! reading the segments and writing the `.cleaned` file are `run.rs`'s.

use bytes::Bytes;
use citystream_record::{BatchHeader, RecordBatch, compact_batch, gap_batch};

use super::plan::Planner;

/// The rewritten batches of `batches` (consecutive batches of one segment)
/// under `planner`'s decision, in order.
pub(crate) fn rewrite_batches(batches: &[RecordBatch], planner: &Planner) -> Vec<Bytes> {
    let mut output = Vec::with_capacity(batches.len());
    let mut removed_run: Vec<BatchHeader> = Vec::new();
    for batch in batches {
        // A gap at or above the horizon (left by a pass at a higher one)
        // is kept as it is: merging it would put a batch across the horizon.
        let kept = if batch.header().is_gap() && planner.is_below_horizon(batch.header()) {
            None
        } else {
            compact_batch(batch, &planner.keep_flags(batch))
        };
        match kept {
            Some(bytes) => {
                flush_run(&mut removed_run, &mut output);
                output.push(bytes);
            }
            None => removed_run.push(*batch.header()),
        }
    }
    flush_run(&mut removed_run, &mut output);
    check_same_span(batches, &output);
    output
}

/// Replaces a pending run of wholly removed batches by one gap batch.
fn flush_run(removed_run: &mut Vec<BatchHeader>, output: &mut Vec<Bytes>) {
    if !removed_run.is_empty() {
        output.push(gap_batch(removed_run));
        removed_run.clear();
    }
}

/// Asserts the output covers the input's offsets densely.
fn check_same_span(input: &[RecordBatch], output: &[Bytes]) {
    let (Some(first), Some(last)) = (input.first(), input.last()) else {
        assert!(output.is_empty(), "no input, no output");
        return;
    };
    let mut expected = first.header().base_offset;
    for bytes in output {
        let header = BatchHeader::decode(bytes).expect("rewritten batches decode");
        assert_eq!(header.base_offset, expected, "rewritten batches are dense");
        expected = header.next_offset();
    }
    assert_eq!(
        expected,
        last.header().next_offset(),
        "the rewrite covers the same offsets"
    );
}
