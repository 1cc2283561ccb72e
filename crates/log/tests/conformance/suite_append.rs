//! Conformance: appending and reading.

use citystream_log::{LogError, Offset, Term};
use citystream_record::{
    BATCH_HEADER_LEN, BatchError, BatchHeader, RecordBatch, set_base_offset, set_raft_index,
    set_term,
};

use crate::common::*;

/// A new log is empty at offset 0 and serves an empty read at its end.
pub fn empty_log_serves_nothing(factory: Factory) {
    let fixture = factory();
    let log = fixture.open(small_config(4096));
    assert_eq!(
        (log.start_offset(), log.next_offset()),
        (Offset(0), Offset(0))
    );
    assert_eq!(log.last_term(), Term(0));
    assert_eq!(log.last_raft_index(), 0);
    assert_eq!(log.last_batch(), None);
    assert_eq!(log.size_bytes(), 0);
    let result = log.read(Offset(0), 1000).unwrap();
    assert!(result.bytes.is_empty());
    assert_eq!(result.next_offset, Offset(0));
    assert_eq!(log.offset_for_timestamp(0).unwrap(), None);
}

/// Appends get dense offsets, the given term and dense Raft indexes from 1,
/// written into the batch.
pub fn append_assigns_dense_offsets_and_terms(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(small_config(1 << 20));
    let mut first = batch(1, 3, 100);
    let info = log.append(&mut first, Term(2)).unwrap();
    assert_eq!(
        (info.base_offset, info.last_offset, info.max_timestamp_ms),
        (Offset(0), Offset(2), 102)
    );
    assert_eq!((header(&first).base_offset, header(&first).term), (0, 2));
    assert_eq!((info.raft_index, header(&first).raft_index), (1, 1));
    let mut second = batch(2, 1, 50);
    let info = log.append(&mut second, Term(5)).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (Offset(3), Offset(3)));
    assert_eq!((info.raft_index, header(&second).raft_index), (2, 2));
    assert_eq!((log.next_offset(), log.last_term()), (Offset(4), Term(5)));
    assert_eq!(log.last_raft_index(), 2);
    assert_eq!(log.last_batch(), Some(header(&second)));
    assert_eq!(log.size_bytes(), (first.len() + second.len()) as u64);
    let records: Vec<u64> = RecordBatch::from_bytes(first.into())
        .unwrap()
        .records()
        .map(|r| r.offset)
        .collect();
    assert_eq!(records, vec![0, 1, 2]);
}

/// Reads return exactly the appended bytes, whole batches, in order.
pub fn reads_are_byte_identical_whole_batches(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(small_config(1 << 20));
    let written: Vec<Vec<u8>> = (0..20)
        .map(|i| append(&mut log, i, 1 + (i % 4) as u32, 10, 1))
        .collect();
    let all = log.read(Offset(0), usize::MAX).unwrap();
    assert_eq!(all.bytes.to_vec(), written.concat());
    assert_eq!(all.next_offset, log.next_offset());
    // From an offset inside a batch: the batch containing it comes first.
    let inside = header(&written[5]).base_offset + 1;
    let result = log.read(Offset(inside), usize::MAX).unwrap();
    assert_eq!(result.bytes.to_vec(), written[5..].concat());
}

/// `max_bytes` caps a read at whole batches, yet one oversized batch is
/// still served whole.
pub fn read_honours_max_bytes_but_returns_one_batch(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(small_config(1 << 20));
    let written: Vec<Vec<u8>> = (0..10).map(|i| append(&mut log, i, 3, 0, 1)).collect();
    let two = written[0].len() + written[1].len();
    let result = log.read(Offset(0), two + written[2].len() - 1).unwrap();
    assert_eq!(result.bytes.to_vec(), written[..2].concat());
    let result = log.read(Offset(0), 1).unwrap();
    assert_eq!(result.bytes.to_vec(), written[0]);
    let result = log.read(Offset(3), 0).unwrap();
    assert_eq!(result.bytes.to_vec(), written[1]);
}

/// Reads below the start or beyond the end are `OffsetOutOfRange`.
pub fn read_outside_the_log_is_out_of_range(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(small_config(1 << 20));
    append(&mut log, 0, 5, 0, 1);
    let error = log.read(Offset(6), 100).unwrap_err();
    assert!(
        matches!(
            error,
            LogError::OffsetOutOfRange {
                requested: 6,
                start: 0,
                end: 5
            }
        ),
        "{error}"
    );
    assert!(log.read(Offset(5), 100).unwrap().bytes.is_empty());
    log.purge_before(Offset(2)).unwrap();
    let error = log.read(Offset(1), 100).unwrap_err();
    assert!(
        matches!(
            error,
            LogError::OffsetOutOfRange {
                requested: 1,
                start: 2,
                end: 5
            }
        ),
        "{error}"
    );
}

/// With a dense index and many segments, every offset maps to its batch.
pub fn every_offset_is_found_through_the_index(factory: Factory) {
    let fixture = factory();
    let mut config = small_config(2000);
    config.index_interval_bytes = 0;
    let mut log = fixture.open(config);
    let written: Vec<Vec<u8>> = (0..60)
        .map(|i| append(&mut log, i, 1 + (i % 3) as u32, 0, 1))
        .collect();
    for batch in &written {
        let header = header(batch);
        for offset in header.base_offset..header.next_offset() {
            let result = log.read(Offset(offset), 1).unwrap();
            assert_eq!(result.bytes.to_vec(), *batch, "offset {offset}");
        }
    }
}

/// A consumer reading sequentially sees the same batches as one that reads
/// at every batch's base offset, across segment boundaries.
pub fn sequential_and_random_reads_agree(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(small_config(3000));
    let written: Vec<Vec<u8>> = (0..80).map(|i| append(&mut log, i, 2, 0, 1)).collect();
    for max_bytes in [1, 500, 5000] {
        let read: Vec<Vec<u8>> = read_all(&log, max_bytes)
            .iter()
            .map(|b| b.to_vec())
            .collect();
        assert_eq!(read, written, "max_bytes {max_bytes}");
    }
    for batch in written.iter().rev() {
        let from = Offset(header(batch).base_offset);
        assert_eq!(log.read(from, 1).unwrap().bytes.to_vec(), *batch);
    }
}

/// The log rolls at the size limit; files are named by zero-padded base offset.
pub fn segments_roll_and_are_named_by_base_offset(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(small_config(1000));
    let written: Vec<Vec<u8>> = (0..30).map(|i| append(&mut log, i, 2, 0, 1)).collect();
    assert!(log.segment_count() > 3, "{} segments", log.segment_count());
    let logs = names_with(&*fixture.storage, ".log");
    assert_eq!(logs.len(), log.segment_count());
    assert_eq!(logs[0], "00000000000000000000.log");
    for name in &logs {
        let base: u64 = name.trim_end_matches(".log").parse().unwrap();
        let bytes = file_bytes(&*fixture.storage, name);
        assert!(bytes.len() <= 1000);
        assert_eq!(header(&bytes).base_offset, base);
    }
    assert_eq!(names_with(&*fixture.storage, ".index").len(), logs.len());
    assert_eq!(
        names_with(&*fixture.storage, ".timeindex").len(),
        logs.len()
    );
    assert_eq!(
        log.size_bytes(),
        written.iter().map(|b| b.len() as u64).sum::<u64>()
    );
}

/// Says whether an error is the one a case expects.
type ErrorCheck = fn(&BatchError) -> bool;

/// Bad CRC, bad magic, truncation, trailing bytes and an empty batch are
/// each refused with a typed error, and the log and its files stay as they were.
pub fn bad_batches_are_refused_and_change_nothing(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(small_config(1 << 20));
    append(&mut log, 0, 2, 0, 1);
    let before = file_bytes(&*fixture.storage, &log_name(0));
    let good = batch(1, 2, 0);
    let mut bad_crc = good.clone();
    *bad_crc.last_mut().unwrap() ^= 1;
    let mut bad_magic = good.clone();
    bad_magic[40] = 0;
    let truncated = good[..good.len() - 1].to_vec();
    let mut trailing = good.clone();
    trailing.push(0);
    // A header alone claiming zero records, with a matching CRC.
    let mut empty = good[..BATCH_HEADER_LEN].to_vec();
    empty[32..36].copy_from_slice(&(BATCH_HEADER_LEN as u32).to_le_bytes());
    empty[44..48].copy_from_slice(&0u32.to_le_bytes());
    let crc = citystream_record::crc32c(&empty[40..]);
    empty[36..40].copy_from_slice(&crc.to_le_bytes());
    let cases: [(Vec<u8>, ErrorCheck); 5] = [
        (bad_crc, |e| matches!(e, BatchError::CrcMismatch { .. })),
        (bad_magic, |e| {
            matches!(e, BatchError::BadMagic { found: 0 })
        }),
        (truncated, |e| matches!(e, BatchError::Truncated { .. })),
        (trailing, |e| matches!(e, BatchError::BadLength { .. })),
        (empty, |e| matches!(e, BatchError::Empty)),
    ];
    for (mut bytes, expected) in cases {
        let original = bytes.clone();
        match log.append(&mut bytes, Term(1)) {
            Err(LogError::InvalidBatch(error)) => assert!(expected(&error), "{error}"),
            other => panic!("expected InvalidBatch, got {other:?}"),
        }
        assert_eq!(bytes, original, "a refused batch is not rewritten");
        match log.append_replicated(&bytes) {
            Err(LogError::InvalidBatch(error)) => assert!(expected(&error), "{error}"),
            other => panic!("expected InvalidBatch, got {other:?}"),
        }
    }
    assert_eq!(log.next_offset(), Offset(2));
    assert_eq!(file_bytes(&*fixture.storage, &log_name(0)), before);
}

/// A leader append with a term below the last one is refused.
pub fn term_going_backwards_is_refused(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(small_config(1 << 20));
    append(&mut log, 0, 1, 0, 3);
    let mut bytes = batch(1, 1, 0);
    let error = log.append(&mut bytes, Term(2)).unwrap_err();
    assert!(
        matches!(
            error,
            LogError::TermWentBackwards {
                batch_term: 2,
                last_term: 3
            }
        ),
        "{error}"
    );
    assert_eq!((log.next_offset(), log.last_term()), (Offset(1), Term(3)));
    append(&mut log, 1, 1, 0, 3);
}

/// A follower append must continue the log exactly (offset and Raft
/// index), with no lower term.
pub fn replicated_append_checks_offset_raft_index_and_term(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(small_config(1 << 20));
    let make_at = |base: u64, raft_index: u64, term: u64| {
        let mut bytes = batch(base, 2, 0);
        set_base_offset(&mut bytes, base);
        set_raft_index(&mut bytes, raft_index);
        set_term(&mut bytes, term);
        bytes
    };
    // Batches of two records: the Raft index follows from the offset.
    let make = |base: u64, term: u64| make_at(base, base / 2 + 1, term);
    let info = log.append_replicated(&make(0, 4)).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (Offset(0), Offset(1)));
    assert_eq!((info.raft_index, log.last_raft_index()), (1, 1));
    for raft_index in [0, 1, 3] {
        let error = log
            .append_replicated(&make_at(2, raft_index, 4))
            .unwrap_err();
        assert!(
            matches!(
                error,
                LogError::RaftIndexNonContiguous { expected: 2, found } if found == raft_index
            ),
            "{error}"
        );
    }
    let error = log.append_replicated(&make(3, 4)).unwrap_err();
    assert!(
        matches!(
            error,
            LogError::NonContiguous {
                expected: 2,
                found: 3
            }
        ),
        "{error}"
    );
    let error = log.append_replicated(&make(1, 4)).unwrap_err();
    assert!(
        matches!(
            error,
            LogError::NonContiguous {
                expected: 2,
                found: 1
            }
        ),
        "{error}"
    );
    let error = log.append_replicated(&make(2, 3)).unwrap_err();
    assert!(
        matches!(
            error,
            LogError::TermWentBackwards {
                batch_term: 3,
                last_term: 4
            }
        ),
        "{error}"
    );
    log.append_replicated(&make(2, 6)).unwrap();
    assert_eq!((log.next_offset(), log.last_term()), (Offset(4), Term(6)));
    assert_eq!(log.last_raft_index(), 2);
    let served = log.read(Offset(2), usize::MAX).unwrap().bytes;
    assert_eq!(served.to_vec(), make(2, 6));
}

/// The first record whose timestamp reaches the target is found (not just
/// its batch), within and across segments, with out-of-order timestamps.
pub fn offset_for_timestamp_finds_first_newer_record(factory: Factory) {
    let fixture = factory();
    let mut config = small_config(2500);
    config.index_interval_bytes = 100;
    let mut log = fixture.open(config);
    // Batch i has records at 1000 + 10*i (+1 for its second record),
    // except every 7th batch, which is old (ts 5). The model holds
    // (offset, timestamp) of every record in log order.
    let mut model: Vec<(u64, i64)> = Vec::new();
    for i in 0..60u64 {
        let timestamp_ms = if i % 7 == 3 { 5 } else { 1000 + 10 * i as i64 };
        let bytes = append(&mut log, i, 2, timestamp_ms, 1);
        let header: BatchHeader = header(&bytes);
        model.push((header.base_offset, timestamp_ms));
        model.push((header.base_offset + 1, timestamp_ms + 1));
    }
    assert!(log.segment_count() > 2);
    for target in [
        i64::MIN,
        0,
        5,
        6,
        1000,
        1001,
        1002,
        1234,
        1500,
        1591,
        1592,
        10_000,
    ] {
        let expected = model
            .iter()
            .find(|(_, timestamp_ms)| *timestamp_ms >= target)
            .map(|(offset, _)| Offset(*offset));
        assert_eq!(
            log.offset_for_timestamp(target).unwrap(),
            expected,
            "target {target}"
        );
    }
    log.purge_before(Offset(5)).unwrap();
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some(Offset(5)));
}

/// Batch headers are listed from the batch containing an offset onward.
pub fn batch_headers_are_listed_across_segments(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(small_config(1000));
    let written: Vec<Vec<u8>> = (0..20).map(|i| append(&mut log, i, 3, 0, i / 5)).collect();
    let headers = log.read_batch_headers(Offset(4), 100).unwrap();
    let expected: Vec<BatchHeader> = written[1..].iter().map(|b| header(b)).collect();
    assert_eq!(headers, expected);
    let first_three: Vec<BatchHeader> = written[..3].iter().map(|b| header(b)).collect();
    assert_eq!(log.read_batch_headers(Offset(0), 3).unwrap(), first_three);
    assert!(
        log.read_batch_headers(log.next_offset(), 3)
            .unwrap()
            .is_empty()
    );
}
