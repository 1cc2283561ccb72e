//! Round-trip, exact-bytes and corruption tests of the batch format.

use bytes::Bytes;
use citystream_record::*;
use proptest::prelude::*;

fn sample() -> Bytes {
    let mut b = BatchBuilder::new();
    b.push(1_000, Some(b"k1"), b"hello", &[("h", b"v")])
        .unwrap();
    b.push(1_005, None, b"", &[]).unwrap();
    b.finish()
}

/// Re-numbering a finished batch gives exactly the bytes of a batch built
/// with that producer id and sequence, and its CRC checks.
#[test]
fn set_producer_equals_building_with_the_producer() {
    let build = |producer: Option<(u64, u32)>| {
        let mut b = BatchBuilder::new();
        if let Some((id, sequence)) = producer {
            b.set_producer(id, sequence);
        }
        b.push(1_000, Some(b"k1"), b"hello", &[("h", b"v")])
            .unwrap();
        b.push(1_005, None, b"", &[]).unwrap();
        b.finish().to_vec()
    };
    let mut renumbered = build(Some((7, 10)));
    set_producer(&mut renumbered, 9, 3);
    assert_eq!(renumbered, build(Some((9, 3))));
    let batch = RecordBatch::from_bytes(Bytes::from(renumbered)).unwrap();
    assert_eq!(
        (batch.header().producer_id, batch.header().base_sequence),
        (9, 3)
    );
}

/// A built batch parses back to the same records, offsets, timestamps and
/// HLCs once a leader stamped it.
#[test]
fn round_trip_preserves_records() {
    let mut bytes = sample().to_vec();
    set_base_offset(&mut bytes, 42);
    set_term(&mut bytes, 7);
    set_raft_index(&mut bytes, 9);
    set_base_hlc(&mut bytes, hlc_from_parts(1_000, 5));
    let batch = RecordBatch::from_bytes(Bytes::from(bytes)).unwrap();
    let h = batch.header();
    assert_eq!((h.base_offset, h.term, h.record_count), (42, 7, 2));
    assert_eq!((h.raft_index, h.base_hlc), (9, hlc_from_parts(1_000, 5)));
    assert_eq!(h.last_hlc(), hlc_from_parts(1_000, 6));
    assert_eq!((h.base_timestamp_ms, h.max_timestamp_ms), (1_000, 1_005));
    let records: Vec<_> = batch.records().collect();
    assert_eq!(records[0].offset, 42);
    assert_eq!(records[0].hlc, hlc_from_parts(1_000, 5));
    assert_eq!(records[1].hlc, hlc_from_parts(1_000, 6));
    assert_eq!(records[0].key, Some(&b"k1"[..]));
    assert_eq!(records[0].value, Some(&b"hello"[..]));
    assert_eq!(records[1].value, Some(&b""[..]));
    assert_eq!(records[0].headers, vec![("h", &b"v"[..])]);
    assert_eq!(records[1].offset, 43);
    assert_eq!(records[1].timestamp_ms, 1_005);
    assert_eq!(records[1].key, None);
}

/// The encoding of a one-record batch is exactly the documented layout:
/// base offset, term, Raft index and base HLC left 0 by the producer.
#[test]
fn exact_bytes_of_one_record() {
    let mut b = BatchBuilder::new();
    b.push(5, Some(b"k"), b"v", &[]).unwrap();
    let bytes = b.finish();
    assert_eq!((BATCH_HEADER_LEN, BATCH_VERSION), (80, 2));
    let mut expected = vec![0u8; 32];
    expected.extend_from_slice(&(80u32 + 24).to_le_bytes());
    expected.extend_from_slice(&crc32c(&bytes[40..]).to_le_bytes());
    expected.extend_from_slice(&[BATCH_MAGIC, BATCH_VERSION, 0, 0]);
    expected.extend_from_slice(&1u32.to_le_bytes());
    expected.extend_from_slice(&5i64.to_le_bytes());
    expected.extend_from_slice(&5i64.to_le_bytes());
    expected.extend_from_slice(&NO_PRODUCER.to_le_bytes());
    expected.extend_from_slice(&NO_SEQUENCE.to_le_bytes());
    expected.extend_from_slice(&0u32.to_le_bytes());
    // record: len, ts delta, offset delta, key len, key, value len, value, header count
    expected.extend_from_slice(&20u32.to_le_bytes());
    expected.extend_from_slice(&0i32.to_le_bytes());
    expected.extend_from_slice(&0u32.to_le_bytes());
    expected.extend_from_slice(&1u32.to_le_bytes());
    expected.push(b'k');
    expected.extend_from_slice(&1u32.to_le_bytes());
    expected.push(b'v');
    expected.extend_from_slice(&0u16.to_le_bytes());
    assert_eq!(&bytes[..], &expected[..]);
}

/// The four leader-assigned fields land at the documented positions and
/// nowhere else.
#[test]
fn exact_bytes_of_leader_fields() {
    let mut bytes = sample().to_vec();
    let original = bytes.clone();
    set_base_offset(&mut bytes, 0x0101_0101_0101_0101);
    set_term(&mut bytes, 0x0202_0202_0202_0202);
    set_raft_index(&mut bytes, 0x0303_0303_0303_0303);
    set_base_hlc(&mut bytes, 0x0404_0404_0404_0404);
    for (i, byte) in bytes.iter().enumerate().take(32) {
        assert_eq!(*byte, (i / 8 + 1) as u8, "byte {i}");
    }
    assert_eq!(bytes[32..], original[32..]);
}

/// Every truncation of a valid batch is refused, never mis-parsed.
#[test]
fn every_truncation_is_refused() {
    let bytes = sample();
    for len in 0..bytes.len() {
        assert!(
            RecordBatch::from_bytes(bytes.slice(..len)).is_err(),
            "len {len}"
        );
    }
}

/// Base offset, term, Raft index and base HLC (bytes 0..32) are outside
/// the CRC and may change freely; a flipped bit anywhere else is refused
/// (the length, also outside the CRC, by the record framing).
#[test]
fn crc_covers_everything_but_the_leader_fields() {
    let bytes = sample();
    for i in 0..bytes.len() {
        let mut bad = bytes.to_vec();
        bad[i] ^= 0x01;
        let ok = RecordBatch::from_bytes(Bytes::from(bad)).is_ok();
        assert_eq!(ok, i < 32, "byte {i}");
    }
}

/// A header that is not version 2 is refused by name.
#[test]
fn other_versions_are_refused() {
    for version in [0, 1, 3] {
        let mut bad = sample().to_vec();
        bad[41] = version;
        assert_eq!(
            RecordBatch::from_bytes(Bytes::from(bad)),
            Err(BatchError::UnsupportedVersion { found: version })
        );
    }
}

/// Concatenated batches split back into batches; a partial tail is Truncated.
#[test]
fn batch_iter_splits_and_reports_partial_tail() {
    let one = sample();
    let mut joined = one.to_vec();
    joined.extend_from_slice(&one);
    joined.extend_from_slice(&one[..10]);
    let results: Vec<_> = BatchIter::new(Bytes::from(joined)).collect();
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok() && results[1].is_ok());
    assert!(matches!(results[2], Err(BatchError::Truncated { .. })));
}

proptest! {
    /// Any records, null values included, round-trip through a batch
    /// unchanged.
    #[test]
    fn any_records_round_trip(records in proptest::collection::vec(
        (0i64..1_000_000, proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
         proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
         proptest::collection::vec(("[a-z]{0,8}", proptest::collection::vec(any::<u8>(), 0..8)), 0..3)),
        1..20)) {
        let mut b = BatchBuilder::new();
        for (ts, key, value, headers) in &records {
            let headers: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
            b.push_record(*ts, key.as_deref(), value.as_deref(), &headers).unwrap();
        }
        let batch = RecordBatch::from_bytes(b.finish()).unwrap();
        let parsed: Vec<_> = batch.records().collect();
        prop_assert_eq!(parsed.len(), records.len());
        for (i, (p, (ts, key, value, headers))) in parsed.iter().zip(&records).enumerate() {
            prop_assert_eq!(p.offset, i as u64);
            prop_assert_eq!(p.hlc, i as u64);
            prop_assert_eq!(p.timestamp_ms, *ts);
            prop_assert_eq!(p.key, key.as_deref());
            prop_assert_eq!(p.value, value.as_deref());
            prop_assert_eq!(p.headers.len(), headers.len());
        }
    }
}

/// A batch built and stamped before compaction existed (bytes recorded from
/// that builder) decodes to the same header and records: version 2, span
/// word 0, span = record count, HLC = base + index, every value non-null.
#[test]
fn a_batch_from_before_compaction_decodes_identically() {
    let bytes = hex_bytes(concat!(
        "e8030000000000000300000000000000390000000000000002000168e5cf8b01",
        "c40000001ce45444c5020000030000000068e5cf8b010000fa68e5cf8b010000",
        "0700000000000000280000000000000034000000000000000000000008000000",
        "73656e736f722d310b0000007b22706d3235223a31327d01000400756e697405",
        "00000075672f6d3312000000fa00000001000000ffffffff0000000000002200",
        "0000f6ffffff0200000000000000010000007802000100610000000001006201",
        "00000032",
    ));
    let batch = RecordBatch::from_bytes(Bytes::from(bytes.clone())).unwrap();
    let h = *batch.header();
    let base_hlc = hlc_from_parts(1_700_000_000_001, 2);
    assert_eq!(
        (h.base_offset, h.term, h.raft_index, h.base_hlc),
        (1_000, 3, 57, base_hlc)
    );
    assert_eq!(
        (h.record_count, h.offset_count(), h.compacted_span),
        (3, 3, 0)
    );
    assert_eq!(
        (h.next_offset(), h.last_offset(), h.last_hlc()),
        (1_003, 1_002, base_hlc + 2)
    );
    assert_eq!((h.producer_id, h.base_sequence, h.attributes), (7, 40, 0));
    assert!(!h.is_compacted() && !h.is_gap());
    let records: Vec<_> = batch.records().collect();
    let offsets: Vec<_> = records
        .iter()
        .map(|r| (r.offset, r.hlc, r.timestamp_ms))
        .collect();
    assert_eq!(
        offsets,
        [
            (1_000, base_hlc, 1_700_000_000_000),
            (1_001, base_hlc + 1, 1_700_000_000_250),
            (1_002, base_hlc + 2, 1_699_999_999_990)
        ]
    );
    assert_eq!(records[0].key, Some(&b"sensor-1"[..]));
    assert_eq!(records[0].value, Some(&br#"{"pm25":12}"#[..]));
    assert_eq!(records[0].headers, vec![("unit", &b"ug/m3"[..])]);
    assert_eq!((records[1].key, records[1].value), (None, Some(&b""[..])));
    assert_eq!(
        (records[2].key, records[2].value),
        (Some(&b""[..]), Some(&b"x"[..]))
    );
    assert_eq!(records[2].headers, vec![("a", &b""[..]), ("b", &b"2"[..])]);
    // Today's builder still writes exactly these bytes.
    let mut b = BatchBuilder::new();
    b.set_producer(7, 40);
    b.push(
        1_700_000_000_000,
        Some(b"sensor-1"),
        br#"{"pm25":12}"#,
        &[("unit", b"ug/m3")],
    )
    .unwrap();
    b.push(1_700_000_000_250, None, b"", &[]).unwrap();
    b.push(
        1_699_999_999_990,
        Some(b""),
        b"x",
        &[("a", b""), ("b", b"2")],
    )
    .unwrap();
    assert_eq!(b.finish()[32..], bytes[32..]);
}

/// A tombstone is encoded as `value_len = u32::MAX` with no value bytes,
/// and reads back as a null value, distinct from an empty one.
#[test]
fn exact_bytes_of_a_tombstone() {
    let mut b = BatchBuilder::new();
    b.push_tombstone(5, Some(b"k"), &[]).unwrap();
    b.push(5, Some(b"k"), b"", &[]).unwrap();
    let bytes = b.finish();
    let mut tombstone = Vec::new();
    tombstone.extend_from_slice(&19u32.to_le_bytes());
    tombstone.extend_from_slice(&0i32.to_le_bytes());
    tombstone.extend_from_slice(&0u32.to_le_bytes());
    tombstone.extend_from_slice(&1u32.to_le_bytes());
    tombstone.push(b'k');
    tombstone.extend_from_slice(&u32::MAX.to_le_bytes());
    tombstone.extend_from_slice(&0u16.to_le_bytes());
    assert_eq!(&bytes[80..80 + 23], &tombstone[..]);
    let batch = RecordBatch::from_bytes(bytes).unwrap();
    let values: Vec<_> = batch.records().map(|r| r.value).collect();
    assert_eq!(values, [None, Some(&b""[..])]);
}

/// Every truncation of a batch holding a tombstone is refused.
#[test]
fn every_truncation_of_a_tombstone_batch_is_refused() {
    let mut b = BatchBuilder::new();
    b.push_tombstone(5, None, &[("h", b"v")]).unwrap();
    let bytes = b.finish();
    assert!(RecordBatch::from_bytes(bytes.clone()).is_ok());
    for len in 0..bytes.len() {
        assert!(
            RecordBatch::from_bytes(bytes.slice(..len)).is_err(),
            "len {len}"
        );
    }
}

/// Decodes a hex string written two digits per byte.
fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}
