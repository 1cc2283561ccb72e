//! The checks a decoder makes beyond framing and CRC: offset deltas against
//! the span, the span word and the compaction bits against the record
//! count, and unknown bits. Each case tampers with a valid batch and
//! re-seals its CRC, so only the rule under test can refuse it.

use bytes::Bytes;
use citystream_record::*;

/// Three records with offset deltas 0, 1, 2, stamped at base offset 100.
fn three_records() -> Vec<u8> {
    let mut b = BatchBuilder::new();
    for (i, key) in [b"a", b"b", b"c"].iter().enumerate() {
        b.push(1_000 + i as i64, Some(&key[..]), b"v", &[]).unwrap();
    }
    let mut bytes = b.finish().to_vec();
    set_base_offset(&mut bytes, 100);
    bytes
}

/// The first and last of three records, compacted: deltas 0 and 2, span 3.
fn compacted() -> Vec<u8> {
    let batch = RecordBatch::from_bytes(Bytes::from(three_records())).unwrap();
    compact_batch(&batch, &[true, false, true])
        .unwrap()
        .to_vec()
}

/// Recomputes the CRC after a test changed covered bytes.
fn reseal(bytes: &mut [u8]) {
    let crc = crc32c(&bytes[40..]);
    bytes[36..40].copy_from_slice(&crc.to_le_bytes());
}

/// Byte position of record `index`'s offset delta field.
fn offset_delta_at(bytes: &[u8], index: usize) -> usize {
    let mut position = BATCH_HEADER_LEN;
    for _ in 0..index {
        let len = u32::from_le_bytes(bytes[position..position + 4].try_into().unwrap());
        position += 4 + len as usize;
    }
    position + 8
}

fn set_offset_delta(bytes: &mut [u8], index: usize, delta: u32) {
    let at = offset_delta_at(bytes, index);
    bytes[at..at + 4].copy_from_slice(&delta.to_le_bytes());
}

fn set_u16(bytes: &mut [u8], at: usize, value: u16) {
    bytes[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

fn set_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

/// Reseals `bytes` and returns the decoder's error.
fn refusal(mut bytes: Vec<u8>) -> BatchError {
    reseal(&mut bytes);
    RecordBatch::from_bytes(Bytes::from(bytes)).expect_err("the batch must be refused")
}

fn bad_record_reason(error: BatchError) -> &'static str {
    match error {
        BatchError::BadRecord { reason, .. } => reason,
        other => panic!("expected BadRecord, got {other}"),
    }
}

fn bad_span_reason(error: BatchError) -> &'static str {
    match error {
        BatchError::BadSpan { reason, .. } => reason,
        other => panic!("expected BadSpan, got {other}"),
    }
}

/// The fixtures themselves are valid, so every refusal below is the
/// tampering's doing.
#[test]
fn the_fixtures_are_valid() {
    let plain = RecordBatch::from_bytes(Bytes::from(three_records())).unwrap();
    assert_eq!(plain.header().offset_count(), 3);
    let compacted = RecordBatch::from_bytes(Bytes::from(compacted())).unwrap();
    let offsets: Vec<_> = compacted.records().map(|r| r.offset).collect();
    assert_eq!(offsets, [100, 102]);
}

/// In an uncompacted batch the offset delta must equal the record's index:
/// a delta that skips (0, 2) runs past the span of two records.
#[test]
fn an_uncompacted_delta_that_skips_is_refused() {
    let mut b = BatchBuilder::new();
    b.push(0, None, b"a", &[]).unwrap();
    b.push(0, None, b"b", &[]).unwrap();
    let mut bytes = b.finish().to_vec();
    set_offset_delta(&mut bytes, 1, 2);
    assert_eq!(
        bad_record_reason(refusal(bytes)),
        "offset delta beyond the batch's span"
    );
}

/// Offset deltas that repeat or go down are refused, whatever the batch.
#[test]
fn deltas_that_do_not_increase_are_refused() {
    let mut repeated = three_records();
    set_offset_delta(&mut repeated, 1, 0);
    let mut compacted_repeated = compacted();
    set_offset_delta(&mut compacted_repeated, 1, 0);
    for bytes in [repeated, compacted_repeated] {
        assert_eq!(
            bad_record_reason(refusal(bytes)),
            "offset delta not above the previous record's"
        );
    }
}

/// A compacted batch's last record must lie inside its span.
#[test]
fn a_compacted_delta_beyond_the_span_is_refused() {
    let mut bytes = compacted();
    set_offset_delta(&mut bytes, 1, 3);
    assert_eq!(
        bad_record_reason(refusal(bytes)),
        "offset delta beyond the batch's span"
    );
}

/// The span word is refused on a batch that is not `COMPACTED`.
#[test]
fn a_span_without_compacted_is_refused() {
    let mut bytes = three_records();
    set_u32(&mut bytes, 76, 3);
    assert_eq!(
        bad_span_reason(refusal(bytes)),
        "span word is set without COMPACTED"
    );
}

/// `GAP` needs `COMPACTED` too.
#[test]
fn gap_without_compacted_is_refused() {
    let mut bytes = gap_batch(&[*RecordBatch::from_bytes(Bytes::from(three_records()))
        .unwrap()
        .header()])
    .to_vec();
    set_u16(&mut bytes, 42, attributes::GAP);
    assert_eq!(
        bad_span_reason(refusal(bytes)),
        "GAP is set without COMPACTED"
    );
}

/// A `GAP` batch holds no records and carries no producer.
#[test]
fn a_gap_with_records_or_a_producer_is_refused() {
    let mut with_records = compacted();
    set_u16(
        &mut with_records,
        42,
        attributes::COMPACTED | attributes::GAP,
    );
    assert_eq!(
        bad_span_reason(refusal(with_records)),
        "a GAP batch holds no records"
    );
    let header = *RecordBatch::from_bytes(Bytes::from(three_records()))
        .unwrap()
        .header();
    let mut with_producer = gap_batch(&[header]).to_vec();
    set_producer(&mut with_producer, 7, 0);
    assert_eq!(
        bad_span_reason(refusal(with_producer)),
        "a GAP batch has no producer"
    );
}

/// A `GAP` batch covers at least one offset.
#[test]
fn a_gap_over_no_offsets_is_refused() {
    let header = *RecordBatch::from_bytes(Bytes::from(three_records()))
        .unwrap()
        .header();
    let mut bytes = gap_batch(&[header]).to_vec();
    set_u32(&mut bytes, 76, 0);
    assert_eq!(
        bad_span_reason(refusal(bytes)),
        "a GAP batch covers at least one offset"
    );
}

/// A `COMPACTED` batch removed at least one record of its span and kept at
/// least one, and its span is never 0.
#[test]
fn a_compacted_batch_inconsistent_with_its_span_is_refused() {
    for span in [0, 2, 1] {
        let mut bytes = compacted();
        set_u32(&mut bytes, 76, span);
        assert_eq!(
            bad_span_reason(refusal(bytes)),
            "a COMPACTED batch keeps at least one record and removed one",
            "span {span}"
        );
    }
}

/// Zero records are refused unless the batch is a `GAP`.
#[test]
fn zero_records_without_gap_are_refused() {
    let header = *RecordBatch::from_bytes(Bytes::from(three_records()))
        .unwrap()
        .header();
    let mut empty = gap_batch(&[header]).to_vec();
    set_u16(&mut empty, 42, 0);
    set_u32(&mut empty, 76, 0);
    assert_eq!(refusal(empty), BatchError::Empty);
}

/// Every attribute bit this version does not know is still refused, with
/// or without the compaction bits beside it.
#[test]
fn unknown_attribute_bits_are_refused() {
    for bit in 3..16 {
        for known in [0, attributes::COMPACTED] {
            let mut bytes = compacted();
            let attributes = known | (1 << bit);
            set_u16(&mut bytes, 42, attributes);
            assert_eq!(
                refusal(bytes),
                BatchError::ReservedBits { bits: 1 << bit },
                "bit {bit}"
            );
        }
    }
}

/// A builder refuses to set the compaction bits: only compaction makes
/// compacted batches.
#[test]
#[should_panic(expected = "compaction bits are set by compaction")]
fn a_builder_cannot_set_compaction_bits() {
    BatchBuilder::new().set_attributes(attributes::COMPACTED);
}
