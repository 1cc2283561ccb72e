//! `compact_batch` and `gap_batch`: exact bytes, round trips, truncation,
//! and properties over arbitrary batches and removal sets.

use bytes::Bytes;
use citystream_record::*;
use proptest::prelude::*;

/// One record as a test writes it: timestamp, key, value (None = null).
type Input = (
    i64,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Vec<u8>)>,
);

/// One record as read back, owned, with everything compaction must keep.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    offset: u64,
    timestamp_ms: i64,
    hlc: u64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Vec<u8>)>,
}

fn seen(batch: &RecordBatch) -> Vec<Seen> {
    batch
        .records()
        .map(|r| Seen {
            offset: r.offset,
            timestamp_ms: r.timestamp_ms,
            hlc: r.hlc,
            key: r.key.map(<[u8]>::to_vec),
            value: r.value.map(<[u8]>::to_vec),
            headers: r
                .headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.to_vec()))
                .collect(),
        })
        .collect()
}

/// Where a leader put a batch: base offset, term, Raft index, base HLC.
#[derive(Debug, Clone, Copy)]
struct Stamp {
    base_offset: u64,
    term: u64,
    raft_index: u64,
    base_hlc: u64,
}

fn build(records: &[Input], producer: Option<(u64, u32)>, stamp: Stamp) -> RecordBatch {
    let mut b = BatchBuilder::new();
    if let Some((id, sequence)) = producer {
        b.set_producer(id, sequence);
    }
    for (ts, key, value, headers) in records {
        let headers: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        b.push_record(*ts, key.as_deref(), value.as_deref(), &headers)
            .unwrap();
    }
    let mut bytes = b.finish().to_vec();
    set_base_offset(&mut bytes, stamp.base_offset);
    set_term(&mut bytes, stamp.term);
    set_raft_index(&mut bytes, stamp.raft_index);
    set_base_hlc(&mut bytes, stamp.base_hlc);
    RecordBatch::from_bytes(Bytes::from(bytes)).unwrap()
}

const STAMP: Stamp = Stamp {
    base_offset: 500,
    term: 4,
    raft_index: 21,
    base_hlc: 0x0000_0100_0000_0007,
};

/// Three records: key "a" (value "1"), key "b" (a tombstone), key "a" ("3").
fn three() -> RecordBatch {
    let records: Vec<Input> = vec![
        (1_000, Some(b"a".to_vec()), Some(b"1".to_vec()), vec![]),
        (
            1_010,
            Some(b"b".to_vec()),
            None,
            vec![("h".into(), b"x".to_vec())],
        ),
        (1_005, Some(b"a".to_vec()), Some(b"3".to_vec()), vec![]),
    ];
    build(&records, Some((9, 30)), STAMP)
}

fn compacted(batch: &RecordBatch, keep: &[bool]) -> RecordBatch {
    RecordBatch::from_bytes(compact_batch(batch, keep).unwrap()).unwrap()
}

/// A compacted batch is the documented header (four fields rewritten, the
/// rest as stamped) followed by the kept record's bytes, delta included.
#[test]
fn exact_bytes_of_a_compacted_batch() {
    let original = three();
    let bytes = compact_batch(&original, &[false, true, false]).unwrap();
    let mut record = Vec::new();
    record.extend_from_slice(&27u32.to_le_bytes()); // len
    record.extend_from_slice(&10i32.to_le_bytes()); // ts delta
    record.extend_from_slice(&1u32.to_le_bytes()); // offset delta, kept
    record.extend_from_slice(&1u32.to_le_bytes());
    record.push(b'b');
    record.extend_from_slice(&u32::MAX.to_le_bytes()); // null value
    record.extend_from_slice(&1u16.to_le_bytes());
    record.extend_from_slice(&1u16.to_le_bytes());
    record.push(b'h');
    record.extend_from_slice(&1u32.to_le_bytes());
    record.push(b'x');
    let mut expected = original.bytes()[..32].to_vec();
    expected.extend_from_slice(&(80u32 + 31).to_le_bytes());
    expected.extend_from_slice(&[0; 4]); // the CRC, checked below
    expected.extend_from_slice(&[BATCH_MAGIC, BATCH_VERSION]);
    expected.extend_from_slice(&attributes::COMPACTED.to_le_bytes());
    expected.extend_from_slice(&1u32.to_le_bytes());
    expected.extend_from_slice(&1_000i64.to_le_bytes());
    expected.extend_from_slice(&1_010i64.to_le_bytes());
    expected.extend_from_slice(&9u64.to_le_bytes());
    expected.extend_from_slice(&30u32.to_le_bytes());
    expected.extend_from_slice(&3u32.to_le_bytes()); // span
    expected.extend_from_slice(&record);
    let crc = crc32c(&expected[40..]);
    expected[36..40].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(&bytes[..], &expected[..]);
    assert_eq!(&original.bytes()[0..32], &STAMP_BYTES[..]);
}

/// The stamp's bytes 0..32, written out: base offset, term, index, HLC.
const STAMP_BYTES: [u8; 32] = [
    0xf4, 0x01, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 21, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0,
    1, 0, 0,
];

/// A gap batch is the documented 80-byte header: first base offset, last
/// term and index, an HLC ending at the largest covered, no producer.
#[test]
fn exact_bytes_of_a_gap_batch() {
    let first = *three().header();
    let second = *build(
        &[(2_000, None, Some(b"z".to_vec()), vec![])],
        None,
        Stamp {
            base_offset: 503,
            term: 5,
            raft_index: 22,
            base_hlc: 0x0000_0100_0000_0010,
        },
    )
    .header();
    let bytes = gap_batch(&[first, second]);
    let mut expected = Vec::new();
    expected.extend_from_slice(&500u64.to_le_bytes());
    expected.extend_from_slice(&5u64.to_le_bytes());
    expected.extend_from_slice(&22u64.to_le_bytes());
    expected.extend_from_slice(&0x0000_0100_0000_000du64.to_le_bytes()); // 0x10 - (4 - 1)
    expected.extend_from_slice(&80u32.to_le_bytes());
    expected.extend_from_slice(&[0; 4]);
    expected.extend_from_slice(&[BATCH_MAGIC, BATCH_VERSION]);
    expected.extend_from_slice(&0x0006u16.to_le_bytes());
    expected.extend_from_slice(&0u32.to_le_bytes());
    expected.extend_from_slice(&1_000i64.to_le_bytes());
    expected.extend_from_slice(&2_000i64.to_le_bytes());
    expected.extend_from_slice(&NO_PRODUCER.to_le_bytes());
    expected.extend_from_slice(&NO_SEQUENCE.to_le_bytes());
    expected.extend_from_slice(&4u32.to_le_bytes());
    let crc = crc32c(&expected[40..]);
    expected[36..40].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(&bytes[..], &expected[..]);
}

/// Removing nothing returns the batch byte for byte, producer CRC included,
/// whether it was compacted before or not; removing everything gives None.
#[test]
fn nothing_removed_is_verbatim_and_everything_removed_is_none() {
    let original = three();
    let kept = compact_batch(&original, &[true; 3]).unwrap();
    assert_eq!(&kept, original.bytes());
    assert_eq!(compact_batch(&original, &[false; 3]), None);
    let once = compacted(&original, &[true, false, true]);
    assert_eq!(&compact_batch(&once, &[true; 2]).unwrap(), once.bytes());
    assert_eq!(compact_batch(&once, &[false; 2]), None);
}

/// A compacted batch decodes with the original's offsets, span, HLCs,
/// timestamps and producer; survivors have HLC `base_hlc + offset_delta`.
#[test]
fn a_compacted_batch_round_trips() {
    let original = three();
    let batch = compacted(&original, &[true, false, true]);
    let (before, after) = (original.header(), batch.header());
    assert!(after.is_compacted() && !after.is_gap());
    assert_eq!((after.record_count, after.offset_count()), (2, 3));
    assert_eq!(
        (after.next_offset(), after.last_offset(), after.last_hlc()),
        (
            before.next_offset(),
            before.last_offset(),
            before.last_hlc()
        )
    );
    let same = |h: &BatchHeader| {
        let fields = (
            h.base_offset,
            h.term,
            h.raft_index,
            h.base_hlc,
            h.producer_id,
        );
        (
            fields,
            h.base_sequence,
            h.base_timestamp_ms,
            h.max_timestamp_ms,
        )
    };
    assert_eq!(same(after), same(before));
    let all = seen(&original);
    assert_eq!(seen(&batch), [all[0].clone(), all[2].clone()]);
    assert_eq!(seen(&batch)[1].hlc, STAMP.base_hlc + 2);
    assert_eq!(seen(&batch)[1].offset, 502);
}

/// Every truncation of a compacted and of a gap batch is refused.
#[test]
fn every_truncation_of_compacted_and_gap_batches_is_refused() {
    let original = three();
    let compacted = compact_batch(&original, &[false, true, true]).unwrap();
    let gap = gap_batch(&[*original.header()]);
    for bytes in [compacted, gap] {
        assert!(RecordBatch::from_bytes(bytes.clone()).is_ok());
        for len in 0..bytes.len() {
            assert!(
                RecordBatch::from_bytes(bytes.slice(..len)).is_err(),
                "len {len}"
            );
        }
    }
}

/// The CRC of a compacted or gap batch covers the span word and the bits:
/// a flipped bit anywhere past the leader fields is refused.
#[test]
fn the_crc_covers_compacted_and_gap_headers() {
    let original = three();
    let compacted = compact_batch(&original, &[true, true, false]).unwrap();
    let gap = gap_batch(&[*original.header()]);
    for bytes in [compacted, gap] {
        for i in 32..bytes.len() {
            let mut bad = bytes.to_vec();
            bad[i] ^= 0x01;
            assert!(
                RecordBatch::from_bytes(Bytes::from(bad)).is_err(),
                "byte {i}"
            );
        }
    }
}

/// A gap decodes with no records and spans exactly the batches it covers;
/// it may cover earlier gaps and compacted batches, and takes its HLC from
/// the largest covered, not from a later control batch stamped 0.
#[test]
fn a_gap_spans_what_it_covers_and_keeps_the_largest_hlc() {
    let data = three();
    let earlier_gap = gap_batch(&[*data.header()]);
    let earlier_gap = RecordBatch::from_bytes(earlier_gap).unwrap();
    let mut control = BatchBuilder::new();
    control.set_attributes(attributes::CONTROL);
    control.push(0, None, b"blank", &[]).unwrap();
    let mut control = control.finish().to_vec();
    set_base_offset(&mut control, 503);
    set_raft_index(&mut control, 22);
    set_term(&mut control, 6);
    let control = RecordBatch::from_bytes(Bytes::from(control)).unwrap();
    let covered = [*earlier_gap.header(), *control.header()];
    let gap = RecordBatch::from_bytes(gap_batch(&covered)).unwrap();
    let header = gap.header();
    assert!(header.is_compacted() && header.is_gap());
    assert_eq!(gap.records().count(), 0);
    assert_eq!((header.base_offset, header.next_offset()), (500, 504));
    assert_eq!((header.offset_count(), header.last_offset()), (4, 503));
    assert_eq!((header.term, header.raft_index), (6, 22));
    assert_eq!(header.last_hlc(), data.header().last_hlc());
    assert_eq!(
        (header.base_timestamp_ms, header.max_timestamp_ms),
        (1_000, 1_010)
    );
}

/// A gap refuses batches that do not follow each other in offsets.
#[test]
#[should_panic(expected = "a gap covers consecutive batches")]
fn a_gap_over_batches_that_do_not_follow_each_other_panics() {
    let header = *three().header();
    let apart = BatchHeader {
        base_offset: header.next_offset() + 1,
        raft_index: header.raft_index + 1,
        ..header
    };
    gap_batch(&[header, apart]);
}

/// Arbitrary records, nulls and empty keys included.
fn inputs() -> impl Strategy<Value = Vec<Input>> {
    let bytes = |max| proptest::collection::vec(any::<u8>(), 0..max);
    let header = ("[a-z]{0,6}", bytes(6));
    let record = (
        -10_000i64..10_000,
        proptest::option::of(bytes(8)),
        proptest::option::of(bytes(40)),
        proptest::collection::vec(header, 0..3),
    );
    proptest::collection::vec(record, 1..24)
}

fn stamps() -> impl Strategy<Value = Stamp> {
    (0u64..1 << 40, any::<u64>(), 1u64..1 << 40, any::<u64>()).prop_map(
        |(base_offset, term, raft_index, base_hlc)| Stamp {
            base_offset,
            term,
            raft_index,
            base_hlc,
        },
    )
}

/// A batch, a producer (or none), and one keep flag per record.
fn batches_and_masks() -> impl Strategy<Value = (RecordBatch, Vec<bool>, Vec<bool>)> {
    let producer = proptest::option::of((1u64..1_000, 0u32..1_000));
    (inputs(), producer, stamps()).prop_flat_map(|(records, producer, stamp)| {
        let count = records.len();
        let batch = build(&records, producer, stamp);
        let mask = proptest::collection::vec(any::<bool>(), count);
        (Just(batch), mask.clone(), mask)
    })
}

proptest! {
    /// For any batch and removal set, the survivors keep their offsets,
    /// keys, values, headers, timestamps and HLCs, and the header keeps its
    /// base offset, term, Raft index, HLC, producer, timestamps and span.
    #[test]
    fn survivors_keep_everything((batch, keep, _) in batches_and_masks()) {
        let before = seen(&batch);
        let expected: Vec<Seen> = before.iter().zip(&keep)
            .filter(|(_, kept)| **kept).map(|(record, _)| record.clone()).collect();
        let Some(bytes) = compact_batch(&batch, &keep) else {
            prop_assert!(expected.is_empty());
            return Ok(());
        };
        let after = RecordBatch::from_bytes(bytes).unwrap();
        prop_assert_eq!(seen(&after), expected);
        let (h, o) = (after.header(), batch.header());
        prop_assert_eq!(
            (h.base_offset, h.term, h.raft_index, h.base_hlc, h.next_offset(), h.last_hlc()),
            (o.base_offset, o.term, o.raft_index, o.base_hlc, o.next_offset(), o.last_hlc())
        );
        prop_assert_eq!(
            (h.producer_id, h.base_sequence, h.base_timestamp_ms, h.max_timestamp_ms),
            (o.producer_id, o.base_sequence, o.base_timestamp_ms, o.max_timestamp_ms)
        );
        prop_assert_eq!(h.is_compacted(), keep.contains(&false));
    }

    /// Compacting in two passes gives the same bytes as removing the union
    /// in one pass: a batch's rewrite depends only on its survivors.
    #[test]
    fn two_passes_equal_one((batch, first, second) in batches_and_masks()) {
        let both: Vec<bool> = first.iter().zip(&second).map(|(a, b)| *a && *b).collect();
        let once = compact_batch(&batch, &both);
        let twice = compact_batch(&batch, &first).and_then(|bytes| {
            let pass = RecordBatch::from_bytes(bytes).unwrap();
            let survivors_keep: Vec<bool> = first.iter().zip(&second)
                .filter(|(kept, _)| **kept).map(|(_, again)| *again).collect();
            compact_batch(&pass, &survivors_keep)
        });
        prop_assert_eq!(once, twice);
    }

    /// A gap over consecutive batches starts at the first, ends where the
    /// last ends, takes its Raft index and term, and its largest HLC.
    #[test]
    fn a_gap_covers_its_batches_exactly(
        sizes in proptest::collection::vec(1usize..5, 1..6),
        stamp in stamps(),
    ) {
        let mut headers = Vec::new();
        let mut next = stamp;
        for size in sizes {
            let records: Vec<Input> = (0..size).map(|i| (i as i64, None, None, vec![])).collect();
            let header = *build(&records, None, next).header();
            next = Stamp {
                base_offset: header.next_offset(),
                term: next.term,
                raft_index: next.raft_index + 1,
                base_hlc: header.last_hlc().wrapping_add(1),
            };
            headers.push(header);
        }
        let gap = RecordBatch::from_bytes(gap_batch(&headers)).unwrap();
        let (h, first, last) = (gap.header(), headers[0], headers[headers.len() - 1]);
        prop_assert_eq!((h.base_offset, h.next_offset()), (first.base_offset, last.next_offset()));
        prop_assert_eq!((h.term, h.raft_index), (last.term, last.raft_index));
        let largest = headers.iter().map(BatchHeader::last_hlc).max().unwrap();
        prop_assert_eq!(h.last_hlc(), largest);
    }
}
