//! Conformance: reopening after clean shutdowns and after damage.

use bytes::Bytes;
use citystream_log::{LogConfig, LogError, Offset, PartitionLog, Term};
use citystream_record::{RecordBatch, set_raft_index};

use crate::common::*;

fn config() -> LogConfig {
    let mut config = small_config(1500);
    config.index_interval_bytes = 100;
    config
}

/// Writes 30 batches over several segments and closes the log.
fn write_log(fixture: &Fixture) -> Vec<Vec<u8>> {
    let mut log = fixture.open(config());
    let written = (0..30)
        .map(|i| append(&mut log, i, 1 + (i % 3) as u32, i as i64, 1 + i / 10))
        .collect();
    assert!(log.segment_count() >= 3);
    written
}

fn expect_log(log: &PartitionLog, written: &[Vec<u8>]) {
    assert_eq!(read_all(log, 1), written);
    assert_eq!(read_all(log, 1 << 20), written);
    let end = written.last().map_or(0, |b| header(b).next_offset());
    assert_eq!(log.next_offset(), Offset(end));
    let term = written.last().map_or(0, |b| header(b).term);
    assert_eq!(log.last_term(), Term(term));
    let raft_index = written.last().map_or(0, |b| header(b).raft_index);
    assert_eq!(log.last_raft_index(), raft_index);
    for batch in written {
        let h = header(batch);
        assert_eq!(
            log.read(Offset(h.last_offset()), 1).unwrap().bytes.to_vec(),
            *batch
        );
        assert_eq!(log.locate_raft_index(h.raft_index).unwrap(), Some(h));
    }
}

/// Every timestamp lookup agrees with a linear search of the records.
fn expect_timestamps(log: &PartitionLog, written: &[Vec<u8>]) {
    let records: Vec<(u64, i64)> = written
        .iter()
        .flat_map(|b| {
            let batch = RecordBatch::from_bytes(Bytes::copy_from_slice(b)).unwrap();
            batch
                .records()
                .map(|r| (r.offset, r.timestamp_ms))
                .collect::<Vec<_>>()
        })
        .collect();
    for target in -1..40 {
        let expected = records
            .iter()
            .find(|(_, timestamp_ms)| *timestamp_ms >= target)
            .map(|(offset, _)| Offset(*offset));
        assert_eq!(
            log.offset_for_timestamp(target).unwrap(),
            expected,
            "timestamp {target}"
        );
    }
}

/// Damages the active segment with `damage`, reopens, and checks exactly
/// `kept` batches survive and appends continue after them.
fn damage_tail_and_reopen(
    fixture: &Fixture,
    written: &[Vec<u8>],
    kept: usize,
    damage: impl FnOnce(&mut Vec<u8>),
) {
    let name = active_log(&*fixture.storage);
    let mut bytes = file_bytes(&*fixture.storage, &name);
    damage(&mut bytes);
    set_file_bytes(&*fixture.storage, &name, &bytes);
    let mut log = fixture.open(config());
    expect_log(&log, &written[..kept]);
    let mut expected = written[..kept].to_vec();
    expected.push(append(&mut log, 99, 2, 0, 5));
    drop(log);
    expect_log(&fixture.open(config()), &expected);
}

/// A cleanly closed log reopens with the same batches, offsets and term.
pub fn reopen_serves_the_same_log(factory: Factory) {
    let fixture = factory();
    let written = write_log(&fixture);
    let mut log = fixture.open(config());
    expect_log(&log, &written);
    let mut expected = written;
    expected.push(append(&mut log, 77, 3, 0, 3));
    drop(log);
    expect_log(&fixture.open(config()), &expected);
}

/// Garbage after the last batch is cut on open.
pub fn garbage_tail_is_cut(factory: Factory) {
    let fixture = factory();
    let written = write_log(&fixture);
    let len = written.len();
    damage_tail_and_reopen(&fixture, &written, len, |bytes| {
        bytes.extend_from_slice(&[0xAB; 100])
    });
    let name = active_log(&*fixture.storage);
    let bytes = file_bytes(&*fixture.storage, &name);
    assert!(!bytes.ends_with(&[0xAB; 100]));
}

/// A partially written batch (part of a header, a header alone, or part of
/// the body) is cut.
pub fn torn_batch_tail_is_cut(factory: Factory) {
    for torn_len in [10, citystream_record::BATCH_HEADER_LEN, 100] {
        let fixture = factory();
        let written = write_log(&fixture);
        let mut next = batch(5, 3, 0);
        citystream_record::set_base_offset(
            &mut next,
            header(written.last().unwrap()).next_offset(),
        );
        let len = written.len();
        damage_tail_and_reopen(&fixture, &written, len, |bytes| {
            bytes.extend_from_slice(&next[..torn_len])
        });
    }
}

/// A flipped byte inside the last batch fails its CRC: that batch is cut,
/// everything before it is served.
pub fn flipped_byte_in_tail_batch_is_cut(factory: Factory) {
    for from_end in [1, 20] {
        let fixture = factory();
        let written = write_log(&fixture);
        let len = written.len();
        damage_tail_and_reopen(&fixture, &written, len - 1, |bytes| {
            let at = bytes.len() - from_end;
            bytes[at] ^= 0x40;
        });
    }
}

/// Deleted index files are rebuilt with the same content.
pub fn missing_indexes_are_rebuilt(factory: Factory) {
    let fixture = factory();
    let written = write_log(&fixture);
    let storage = &*fixture.storage;
    let mut originals = Vec::new();
    for name in names_with(storage, "index") {
        originals.push((name.clone(), file_bytes(storage, &name)));
        storage.delete(&name).unwrap();
    }
    assert!(originals.iter().any(|(_, bytes)| !bytes.is_empty()));
    let log = fixture.open(config());
    expect_log(&log, &written);
    expect_timestamps(&log, &written);
    drop(log);
    for (name, bytes) in originals {
        assert_eq!(file_bytes(storage, &name), bytes, "{name}");
    }
}

/// Garbage in the index files is detected and the indexes rebuilt.
pub fn garbage_indexes_are_rebuilt(factory: Factory) {
    let fixture = factory();
    let written = write_log(&fixture);
    let storage = &*fixture.storage;
    for (i, name) in names_with(storage, "index").into_iter().enumerate() {
        let mut bytes = file_bytes(storage, &name);
        match i % 3 {
            0 => bytes = vec![0xFF; 29],
            1 => bytes
                .iter_mut()
                .for_each(|b| *b = b.wrapping_mul(7).wrapping_add(3)),
            _ => bytes.extend_from_slice(&[1, 2, 3]),
        }
        set_file_bytes(storage, &name, &bytes);
    }
    let log = fixture.open(config());
    expect_log(&log, &written);
    expect_timestamps(&log, &written);
}

/// A batch damaged inside a sealed segment is refused on read, never
/// served; the batches before it still are.
pub fn corruption_in_a_sealed_segment_is_never_served(factory: Factory) {
    let fixture = factory();
    let written = write_log(&fixture);
    let first = names_with(&*fixture.storage, ".log").remove(0);
    let mut bytes = file_bytes(&*fixture.storage, &first);
    let at = written[0].len() + written[1].len() + 70;
    bytes[at] ^= 1;
    set_file_bytes(&*fixture.storage, &first, &bytes);
    let log = fixture.open(config());
    let served = log.read(Offset(0), 1 << 20).unwrap().bytes;
    assert_eq!(served.to_vec(), written[..2].concat());
    let damaged = Offset(header(&written[2]).base_offset);
    let error = log.read(damaged, 1 << 20).unwrap_err();
    assert!(matches!(error, LogError::Corrupt(_)), "{error}");
    let after = Offset(header(&written[3]).base_offset);
    assert_eq!(log.read(after, 1).unwrap().bytes.to_vec(), written[3]);
}

/// A sealed segment whose end is torn ends the log there: offsets must stay
/// dense, so every later segment is dropped.
pub fn torn_sealed_segment_drops_later_segments(factory: Factory) {
    let fixture = factory();
    let written = write_log(&fixture);
    let first = names_with(&*fixture.storage, ".log").remove(0);
    let mut bytes = file_bytes(&*fixture.storage, &first);
    bytes.truncate(bytes.len() - 10);
    set_file_bytes(&*fixture.storage, &first, &bytes);
    let kept = written.iter().scan(0, |at, b| {
        *at += b.len();
        Some(*at)
    });
    let kept = kept.take_while(|end| *end <= bytes.len()).count();
    let log = fixture.open(config());
    expect_log(&log, &written[..kept]);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(names_with(&*fixture.storage, ".log"), vec![first]);
}

/// A damaged `log-start-offset` file stops the open instead of guessing.
pub fn damaged_log_start_file_is_an_error(factory: Factory) {
    let fixture = factory();
    write_log(&fixture);
    let mut log = fixture.open(config());
    log.purge_before(Offset(5)).unwrap();
    drop(log);
    let mut bytes = file_bytes(&*fixture.storage, "log-start-offset");
    bytes[0] ^= 1;
    set_file_bytes(&*fixture.storage, "log-start-offset", &bytes);
    let error = PartitionLog::open_with(fixture.storage.clone(), config()).unwrap_err();
    assert!(matches!(error, LogError::Corrupt(_)), "{error}");
}

/// A batch whose Raft index does not follow its predecessor's (it sits
/// outside the CRC) ends the log like a corrupt tail, whether it is the
/// last batch (often the one the last index entry points to) or the first
/// of the active segment.
pub fn raft_index_out_of_sequence_in_the_tail_is_cut(factory: Factory) {
    for (last, wrong_by) in [(true, 1), (true, 1000), (false, 1), (false, u64::MAX)] {
        let fixture = factory();
        let written = write_log(&fixture);
        let active_base: u64 = active_log(&*fixture.storage)[..20].parse().unwrap();
        let in_active = written
            .iter()
            .position(|b| header(b).base_offset == active_base)
            .unwrap();
        let damaged = if last { written.len() - 1 } else { in_active };
        let at: usize = written[in_active..damaged].iter().map(Vec::len).sum();
        let wrong = header(&written[damaged]).raft_index.wrapping_add(wrong_by);
        damage_tail_and_reopen(&fixture, &written, damaged, |bytes| {
            set_raft_index(&mut bytes[at..], wrong)
        });
    }
}

/// A segment whose first batch does not continue the previous segment's
/// Raft indexes is cut to nothing, and every later segment dropped.
pub fn raft_index_gap_at_a_segment_start_drops_later_segments(factory: Factory) {
    let fixture = factory();
    let written = write_log(&fixture);
    let names = names_with(&*fixture.storage, ".log");
    let second = &names[1];
    let base: u64 = second[..20].parse().unwrap();
    let mut bytes = file_bytes(&*fixture.storage, second);
    let index = header(&bytes).raft_index;
    set_raft_index(&mut bytes, index + 1);
    set_file_bytes(&*fixture.storage, second, &bytes);
    let kept = written
        .iter()
        .take_while(|b| header(b).base_offset < base)
        .count();
    let mut log = fixture.open(config());
    expect_log(&log, &written[..kept]);
    assert_eq!(log.last_raft_index(), index - 1);
    assert_eq!(header(&append(&mut log, 1, 1, 0, 9)).raft_index, index);
}

/// The first batch of the log must carry 1 in a log that never moved its
/// start, or the stored floor index plus one after a reset; otherwise the
/// log is cut there.
pub fn first_batch_must_follow_the_stored_raft_index(factory: Factory) {
    for reset in [false, true] {
        let fixture = factory();
        let mut log = fixture.open(config());
        if reset {
            log.reset(Offset(100), Term(1), 40).unwrap();
        }
        let first = append(&mut log, 1, 2, 0, 1);
        drop(log);
        let name = active_log(&*fixture.storage);
        let mut bytes = file_bytes(&*fixture.storage, &name);
        set_raft_index(&mut bytes, header(&first).raft_index + 1);
        set_file_bytes(&*fixture.storage, &name, &bytes);
        let log = fixture.open(config());
        assert_eq!(log.next_offset(), Offset(header(&first).base_offset));
        assert!(read_all(&log, 1).is_empty());
        assert_eq!(log.last_raft_index(), if reset { 39 } else { 0 });
    }
}
