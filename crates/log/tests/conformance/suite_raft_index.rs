//! Conformance: Raft indexes. Every batch's index is its ordinal in the
//! log (from 1); the last index survives purges, retention, resets and
//! reopens; truncation rewinds it; lookup by index finds every served batch.

use citystream_log::{LogConfig, Offset, PartitionLog, Term};
use citystream_record::BatchHeader;

use crate::common::*;

/// Small segments and an index entry about every batch, so lookups cross
/// segments and use the offset index.
fn config() -> LogConfig {
    let mut config = small_config(1200);
    config.index_interval_bytes = 100;
    config
}

/// Appends `count` batches of 1-3 records; returns their stored bytes.
fn append_batches(log: &mut PartitionLog, seeds: std::ops::Range<u64>, term: u64) -> Vec<Vec<u8>> {
    seeds
        .map(|i| append(log, i, 1 + (i % 3) as u32, 0, term))
        .collect()
}

/// Every batch the log holds from `written` is found by its Raft index;
/// 0 and the index after the last are not.
fn expect_lookups(log: &PartitionLog, written: &[Vec<u8>]) {
    for bytes in written {
        let expected: BatchHeader = header(bytes);
        let found = log.locate_raft_index(expected.raft_index).unwrap();
        assert_eq!(found, Some(expected), "index {}", expected.raft_index);
    }
    assert_eq!(log.locate_raft_index(0).unwrap(), None);
    let after = log.last_raft_index() + 1;
    assert_eq!(log.locate_raft_index(after).unwrap(), None);
}

/// Lookup by Raft index finds every batch, in every segment, before and
/// after a reopen (which rebuilds nothing for it: the headers are the key).
pub fn raft_index_lookup_finds_every_batch(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(config());
    let written = append_batches(&mut log, 0..60, 1);
    assert!(log.segment_count() > 3);
    assert_eq!(log.last_raft_index(), 60);
    expect_lookups(&log, &written);
    drop(log);
    let log = fixture.open(config());
    assert_eq!(log.last_raft_index(), 60);
    assert_eq!(log.last_batch(), Some(header(&written[59])));
    expect_lookups(&log, &written);
}

/// Batches wholly below the start offset are not found; one straddling it
/// still is; purging everything keeps the last index across a reopen.
pub fn purge_keeps_the_raft_index(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(config());
    let written = append_batches(&mut log, 0..30, 1);
    let straddling = header(&written[10]);
    log.purge_before(Offset(straddling.base_offset + 1))
        .unwrap();
    assert_eq!(
        log.locate_raft_index(straddling.raft_index - 1).unwrap(),
        None
    );
    expect_lookups(&log, &written[10..]);
    log.purge_before(log.next_offset()).unwrap();
    assert_eq!((log.last_raft_index(), log.last_batch()), (30, None));
    assert_eq!(log.locate_raft_index(30).unwrap(), None);
    drop(log);
    let mut log = fixture.open(config());
    assert_eq!(log.last_raft_index(), 30);
    let next = append(&mut log, 99, 2, 0, 1);
    assert_eq!(header(&next).raft_index, 31);
    expect_lookups(&log, &[next]);
}

/// Retention deletes segments and records the index of the last deleted
/// batch, so a log left with no batch still continues the sequence.
pub fn retention_keeps_the_raft_index(factory: Factory) {
    let fixture = factory();
    let mut config = config();
    config.retention_bytes = Some(0);
    let mut log = fixture.open(config.clone());
    let written = append_batches(&mut log, 0..40, 1);
    assert!(log.apply_retention(0).unwrap() > 0);
    assert_eq!(log.last_raft_index(), 40);
    let kept = written
        .iter()
        .skip_while(|b| header(b).next_offset() <= log.start_offset().0);
    expect_lookups(&log, &kept.cloned().collect::<Vec<_>>());
    // Everything goes: the start moves to the end, as after a full purge.
    log.purge_before(log.next_offset()).unwrap();
    assert_eq!(log.apply_retention(0).unwrap(), 0);
    drop(log);
    let mut log = fixture.open(config);
    assert_eq!(log.last_raft_index(), 40);
    assert_eq!(header(&append(&mut log, 1, 1, 0, 1)).raft_index, 41);
}

/// `retention_point` names the last batch retention would delete and
/// deletes nothing; purging after it then does what retention does, and
/// `floor` reports that batch as the one below the start.
pub fn retention_point_is_where_retention_would_cut(factory: Factory) {
    let fixture = factory();
    let mut config = config();
    config.retention_bytes = Some(0);
    let mut log = fixture.open(config.clone());
    let written = append_batches(&mut log, 0..40, 1);
    assert_eq!(log.floor(), (Term(0), 0));
    let point = log.retention_point(0).expect("segments to delete");
    assert_eq!(log.start_offset(), Offset(0), "nothing deleted yet");
    assert!(
        point.next_offset() < log.next_offset().0,
        "never the active segment"
    );
    let segments = log.segment_count();
    log.purge_before(Offset(point.next_offset())).unwrap();
    assert!(log.segment_count() < segments);
    assert_eq!(log.start_offset(), Offset(point.next_offset()));
    assert_eq!(log.floor(), (Term(point.term), point.raft_index));
    assert_eq!(
        log.retention_point(0),
        None,
        "retention has nothing left to cut"
    );
    assert_eq!(log.apply_retention(0).unwrap(), 0);
    let kept = written
        .iter()
        .skip_while(|b| header(b).raft_index <= point.raft_index);
    expect_lookups(&log, &kept.cloned().collect::<Vec<_>>());
    drop(log);
    let log = fixture.open(config);
    assert_eq!(log.floor(), (Term(point.term), point.raft_index));
}

/// Truncation rewinds the last index to the last kept batch, within and
/// across segments; the next append reuses the removed indexes.
pub fn truncate_rewinds_the_raft_index(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(config());
    let mut written = append_batches(&mut log, 0..40, 1);
    let keep = header(&written[24]);
    log.truncate_after(Offset(keep.last_offset())).unwrap();
    written.truncate(25);
    assert_eq!(log.last_raft_index(), 25);
    assert_eq!(log.locate_raft_index(26).unwrap(), None);
    written.extend(append_batches(&mut log, 100..105, 2));
    assert_eq!(header(&written[25]).raft_index, 26);
    expect_lookups(&log, &written);
    drop(log);
    expect_lookups(&fixture.open(config()), &written);
}

/// Truncating the batch that straddles the start (after a purge into its
/// middle) empties the log there; the next append takes that batch's index.
pub fn truncate_of_the_straddling_batch_reuses_its_index(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(config());
    let written = append_batches(&mut log, 0..10, 1);
    let straddling = header(&written[5]);
    assert!(straddling.record_count > 1);
    log.purge_before(Offset(straddling.base_offset + 1))
        .unwrap();
    log.truncate_after(Offset(straddling.base_offset)).unwrap();
    assert_eq!(log.next_offset(), Offset(straddling.base_offset));
    assert_eq!(log.last_raft_index(), straddling.raft_index - 1);
    drop(log);
    let mut log = fixture.open(config());
    assert_eq!(log.last_raft_index(), straddling.raft_index - 1);
    let next = append(&mut log, 50, 1, 0, 1);
    assert_eq!(header(&next).raft_index, straddling.raft_index);
    expect_lookups(&log, &[next]);
}

/// After a reset the log continues at the given Raft index; earlier
/// indexes are gone.
pub fn reset_continues_at_the_given_raft_index(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(config());
    append_batches(&mut log, 0..20, 1);
    log.reset(Offset(500), Term(3), 1000).unwrap();
    assert_eq!(log.last_raft_index(), 999);
    assert_eq!(log.locate_raft_index(5).unwrap(), None);
    let written = append_batches(&mut log, 0..30, 3);
    assert_eq!(header(&written[0]).raft_index, 1000);
    expect_lookups(&log, &written);
    drop(log);
    let log = fixture.open(config());
    assert_eq!(log.last_raft_index(), 1029);
    expect_lookups(&log, &written);
}
