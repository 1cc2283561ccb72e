//! The two rewrites log compaction makes of batches, as pure functions of
//! their input: [`compact_batch`] (a batch minus some of its records) and
//! [`gap_batch`] (a run of wholly removed batches as one header). Equal
//! inputs give equal bytes, so replicas that remove the same records write
//! byte-identical batches (decision 0017, §2).
//!
//! This file does not decide which records are removed (the newest record
//! per key survives, expired tombstones go: the log's compaction pass
//! decides), and it never touches files.
//!
//! A `COMPACTED` batch is the original batch with four header fields
//! rewritten and the removed records cut out:
//!
//! ```text
//!  bytes   field                      verbatim batch   COMPACTED batch
//!  0..32   base_offset, term,         (unchanged)
//!          raft_index, base_hlc
//!  32..36  batch_len                  original         80 + the survivors' bytes
//!  36..40  crc32c                     producer's       recomputed over [40, batch_len)
//!  40..42  magic, version             (unchanged)
//!  42..44  attributes                 a                a | COMPACTED (0x0002)
//!  44..48  record_count               n                survivors, 1 ..= span - 1
//!  48..76  base/max timestamp,        (unchanged: the time index and age
//!          producer_id, base_seq       retention see the same batch)
//!  76..80  span                       0                original span (n, or the span
//!                                                      kept by an earlier pass)
//!  80..    records                    n records        the survivors, byte for byte
//!                                                      (offset deltas kept)
//! ```
//!
//! A `GAP` batch is a header alone, 80 bytes:
//!
//! ```text
//!  base_offset         first covered batch's base offset
//!  term, raft_index    the last covered batch's (it stands for the Raft
//!                      entries after the previous batch's up to that one)
//!  base_hlc            largest covered last_hlc - (span - 1), so that
//!                      last_hlc() is the largest HLC covered
//!  batch_len           80
//!  crc32c              over [40, 80)
//!  attributes          COMPACTED | GAP (0x0006)
//!  record_count        0
//!  base_timestamp      the first covered batch's
//!  max_timestamp       the largest covered
//!  producer_id, base_seq   0, u32::MAX (none)
//!  span                the covered offsets: last next_offset - first base_offset
//! ```

use bytes::Bytes;

use crate::RecordBatch;
use crate::header::{
    BATCH_HEADER_LEN, BatchHeader, NO_PRODUCER, NO_SEQUENCE, attributes, compute_and_store_crc,
};

/// The batch with the records whose `keep` flag is false removed:
/// - every record kept: the batch itself, verbatim (its producer CRC too);
/// - none kept: `None` (the batch is wholly removed; see [`gap_batch`]);
/// - otherwise a `COMPACTED` batch with the same base offset, term, Raft
///   index, base HLC, timestamps, producer fields and span, holding the
///   kept records byte for byte, so each keeps its offset, HLC, timestamp,
///   key, value and headers. Its CRC is recomputed.
///
/// A compacted batch may be compacted again; it keeps its original span.
///
/// Panics unless `keep` has one flag per record of `batch`.
pub fn compact_batch(batch: &RecordBatch, keep: &[bool]) -> Option<Bytes> {
    let header = batch.header();
    assert_eq!(
        keep.len(),
        header.record_count as usize,
        "compact_batch needs one keep flag per record"
    );
    let kept_count = keep.iter().filter(|kept| **kept).count();
    if kept_count == keep.len() {
        return Some(batch.bytes().clone());
    }
    if kept_count == 0 {
        return None;
    }
    let mut out = Vec::with_capacity(batch.bytes().len());
    out.resize(BATCH_HEADER_LEN, 0);
    let kept_records = batch.encoded_records().zip(keep).filter(|(_, kept)| **kept);
    for (record, _) in kept_records {
        out.extend_from_slice(record);
    }
    let compacted = BatchHeader {
        batch_len: u32::try_from(out.len()).expect("part of a batch is smaller than the batch"),
        attributes: header.attributes | attributes::COMPACTED,
        crc: 0,
        record_count: u32::try_from(kept_count).expect("fewer records than the batch"),
        compacted_span: header.offset_count(),
        ..*header
    };
    compacted.encode(&mut out[..BATCH_HEADER_LEN]);
    compute_and_store_crc(&mut out);
    Some(Bytes::from(out))
}

/// One header-only `GAP` batch standing for `covered`: consecutive batches
/// of a log (each starting at the previous one's next offset) that
/// compaction removed whole. `covered` may itself hold compacted and gap
/// batches of an earlier pass. The layout is in the module doc.
///
/// Panics if `covered` is empty, not consecutive in offsets, not
/// increasing in Raft index, or spans more than `u32::MAX` offsets (a
/// compaction plan never groups that many, decision 0017 §6).
pub fn gap_batch(covered: &[BatchHeader]) -> Bytes {
    let first = covered.first().expect("a gap covers at least one batch");
    let last = covered.last().expect("a gap covers at least one batch");
    for pair in covered.windows(2) {
        assert_eq!(
            pair[1].base_offset,
            pair[0].next_offset(),
            "a gap covers consecutive batches"
        );
        assert!(
            pair[1].raft_index > pair[0].raft_index,
            "Raft indexes grow along the batches a gap covers"
        );
    }
    let span = u32::try_from(last.next_offset() - first.base_offset)
        .expect("a gap spans at most u32::MAX offsets");
    assert!(span > 0, "a gap covers at least one offset");
    let largest_hlc = covered.iter().map(BatchHeader::last_hlc).max();
    let max_timestamp_ms = covered.iter().map(|header| header.max_timestamp_ms).max();
    let gap = BatchHeader {
        base_offset: first.base_offset,
        term: last.term,
        raft_index: last.raft_index,
        base_hlc: largest_hlc
            .expect("covered is not empty")
            .wrapping_sub(u64::from(span - 1)),
        batch_len: BATCH_HEADER_LEN as u32,
        attributes: attributes::COMPACTED | attributes::GAP,
        crc: 0,
        record_count: 0,
        base_timestamp_ms: first.base_timestamp_ms,
        max_timestamp_ms: max_timestamp_ms.expect("covered is not empty"),
        producer_id: NO_PRODUCER,
        base_sequence: NO_SEQUENCE,
        compacted_span: span,
    };
    let mut out = vec![0u8; BATCH_HEADER_LEN];
    gap.encode(&mut out);
    compute_and_store_crc(&mut out);
    Bytes::from(out)
}
