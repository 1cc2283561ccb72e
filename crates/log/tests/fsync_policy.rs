//! What each fsync policy keeps across a simulated power loss, using the
//! memory backend's model of unsynced bytes.

mod common;

use citystream_log::{FsyncPolicy, LogConfig, Offset};
use common::*;

fn config(fsync: FsyncPolicy) -> LogConfig {
    let mut config = small_config(1000);
    config.fsync = fsync;
    config
}

/// Appends `count` batches, returning their stored bytes.
fn append_many(
    log: &mut citystream_log::PartitionLog,
    seeds: std::ops::Range<u64>,
) -> Vec<Vec<u8>> {
    seeds.map(|seed| append(log, seed, 2, 0, 1)).collect()
}

/// With `Always`, every acknowledged append survives a crash.
#[test]
fn always_loses_nothing() {
    let fixture = memory_fixture();
    let mut log = fixture.open(config(FsyncPolicy::Always));
    let written = append_many(&mut log, 0..25);
    assert!(log.segment_count() > 2);
    drop(log);
    fixture.memory.as_ref().unwrap().crash();
    let log = fixture.open(config(FsyncPolicy::Always));
    assert_eq!(read_all(&log, 1), written);
}

/// With `Interval`, a crash keeps exactly what the last `sync` covered,
/// across segment rolls.
#[test]
fn interval_keeps_what_was_synced() {
    let policy = FsyncPolicy::Interval { interval_ms: 5 };
    let fixture = memory_fixture();
    let mut log = fixture.open(config(policy));
    let synced = append_many(&mut log, 0..12);
    log.sync().unwrap();
    let unsynced = append_many(&mut log, 12..30);
    assert!(!unsynced.is_empty());
    drop(log);
    fixture.memory.as_ref().unwrap().crash();
    let mut log = fixture.open(config(policy));
    assert_eq!(read_all(&log, 1), synced);
    let next = append(&mut log, 99, 1, 0, 1);
    assert_eq!(header(&next).base_offset, 24);
}

/// With `Never`, nothing is synced by the log itself, so a crash loses
/// everything not explicitly synced; what was synced survives.
#[test]
fn never_keeps_only_explicit_syncs() {
    let fixture = memory_fixture();
    let mut log = fixture.open(config(FsyncPolicy::Never));
    append_many(&mut log, 0..5);
    drop(log);
    fixture.memory.as_ref().unwrap().crash();
    let mut log = fixture.open(config(FsyncPolicy::Never));
    assert_eq!(log.next_offset(), Offset(0));
    let written = append_many(&mut log, 0..5);
    log.sync().unwrap();
    drop(log);
    fixture.memory.as_ref().unwrap().crash();
    assert_eq!(
        read_all(&fixture.open(config(FsyncPolicy::Never)), 1),
        written
    );
}

/// A sync run outside the log (begin, fsync, finish) counts only what was
/// written before it began: a batch appended while the fsync ran is synced
/// by the next sync, so a crash after that keeps it.
#[test]
fn split_sync_does_not_cover_later_appends() {
    let policy = FsyncPolicy::Interval { interval_ms: 5 };
    let fixture = memory_fixture();
    let mut log = fixture.open(config(policy));
    let mut written = append_many(&mut log, 0..3);
    let pending = log.begin_sync().unwrap();
    assert!(!pending.is_empty());
    let done = pending.run().unwrap();
    written.extend(append_many(&mut log, 3..5));
    log.finish_sync(done);
    // The appends after `begin_sync` are still owed an fsync.
    log.sync().unwrap();
    drop(log);
    fixture.memory.as_ref().unwrap().crash();
    let log = fixture.open(config(policy));
    assert_eq!(read_all(&log, 1), written);
}

/// Nothing to sync after a completed sync: the next begin finds no work.
#[test]
fn split_sync_is_empty_when_nothing_was_written() {
    let fixture = memory_fixture();
    let mut log = fixture.open(config(FsyncPolicy::Interval { interval_ms: 5 }));
    append_many(&mut log, 0..2);
    let done = log.begin_sync().unwrap().run().unwrap();
    log.finish_sync(done);
    assert!(log.begin_sync().unwrap().is_empty());
}
