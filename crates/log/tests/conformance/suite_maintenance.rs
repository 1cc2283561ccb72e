//! Conformance: truncation, purge, reset, retention and sync.

use citystream_log::{FsyncPolicy, LogConfig, LogError, Offset, Term};

use crate::common::*;

/// Batches ending at or before the offset stay; a batch straddling it goes.
pub fn truncate_after_keeps_whole_batches_up_to_offset(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(small_config(1 << 20));
    // Batches: [0..3) term 1, [3..6) term 2, [6..9) term 3.
    let written: Vec<Vec<u8>> = (0..3).map(|i| append(&mut log, i, 3, 0, i + 1)).collect();
    log.truncate_after(Offset(8)).unwrap();
    assert_eq!(log.next_offset(), Offset(9), "no-op at the last offset");
    log.truncate_after(Offset(6)).unwrap();
    assert_eq!((log.next_offset(), log.last_term()), (Offset(6), Term(2)));
    log.truncate_after(Offset(4)).unwrap();
    assert_eq!((log.next_offset(), log.last_term()), (Offset(3), Term(1)));
    assert_eq!(read_all(&log, usize::MAX), vec![written[0].clone()]);
    assert_eq!(log.size_bytes(), written[0].len() as u64);
    // A lower term is fine again after the higher-term batches are gone.
    let again = append(&mut log, 9, 2, 0, 1);
    drop(log);
    let log = fixture.open(small_config(1 << 20));
    assert_eq!(read_all(&log, 1), vec![written[0].clone(), again]);
    assert_eq!(log.last_term(), Term(1));
}

/// Truncation removes later segments; appends and a reopen continue from it.
pub fn truncate_after_across_segments_then_append(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(small_config(1000));
    let written: Vec<Vec<u8>> = (0..40).map(|i| append(&mut log, i, 2, 0, 1)).collect();
    let segments_before = log.segment_count();
    log.truncate_after(Offset(21)).unwrap();
    assert_eq!(log.next_offset(), Offset(22));
    assert!(log.segment_count() < segments_before);
    assert_eq!(
        names_with(&*fixture.storage, ".log").len(),
        log.segment_count()
    );
    let mut expected: Vec<Vec<u8>> = written[..11].to_vec();
    for i in 100..110 {
        expected.push(append(&mut log, i, 2, 0, 2));
    }
    assert_eq!(read_all(&log, 700), expected);
    drop(log);
    let log = fixture.open(small_config(1000));
    assert_eq!(read_all(&log, 700), expected);
    // Truncating at a segment's last offset keeps that segment whole and
    // drops every later one.
    let mut log = log;
    let second = names_with(&*fixture.storage, ".log").remove(1);
    let boundary: u64 = second.trim_end_matches(".log").parse().unwrap();
    log.truncate_after(Offset(boundary - 1)).unwrap();
    assert_eq!(log.next_offset(), Offset(boundary));
    // The segment starting at the cut stays, empty, as the active one.
    assert_eq!(log.segment_count(), 2);
    assert_eq!(file_bytes(&*fixture.storage, &second).len(), 0);
    assert_eq!(read_all(&log, 700), expected[..(boundary / 2) as usize]);
    let next = append(&mut log, 1, 1, 0, 2);
    assert_eq!(header(&next).base_offset, boundary);
}

/// Truncating below `start - 1` or beyond the end is refused; `start - 1`
/// empties the log.
pub fn truncate_after_outside_range_is_refused(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(small_config(1 << 20));
    for i in 0..4 {
        append(&mut log, i, 2, 0, 1);
    }
    let error = log.truncate_after(Offset(8)).unwrap_err();
    assert!(
        matches!(
            error,
            LogError::OffsetOutOfRange {
                requested: 8,
                start: 0,
                end: 8
            }
        ),
        "{error}"
    );
    log.purge_before(Offset(4)).unwrap();
    let error = log.truncate_after(Offset(2)).unwrap_err();
    assert!(
        matches!(error, LogError::OffsetOutOfRange { requested: 2, .. }),
        "{error}"
    );
    log.truncate_after(Offset(3)).unwrap();
    assert_eq!(
        (log.start_offset(), log.next_offset()),
        (Offset(4), Offset(4))
    );
    assert!(log.read(Offset(4), 100).unwrap().bytes.is_empty());
    let next = append(&mut log, 9, 1, 0, 1);
    assert_eq!(header(&next).base_offset, 4);
}

/// Purge moves the start, deletes whole segments below it and persists.
pub fn purge_before_moves_start_and_survives_reopen(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(small_config(1000));
    let written: Vec<Vec<u8>> = (0..30).map(|i| append(&mut log, i, 2, 0, 1)).collect();
    let segments_before = log.segment_count();
    log.purge_before(Offset(25)).unwrap();
    assert_eq!(log.start_offset(), Offset(25));
    assert!(log.segment_count() < segments_before);
    let first_log = names_with(&*fixture.storage, ".log").remove(0);
    let first_base: u64 = first_log.trim_end_matches(".log").parse().unwrap();
    assert!(first_base <= 25);
    // The batch holding 25 starts at 24 and is served whole.
    let served = read_all(&log, 1);
    assert_eq!(served, written[12..]);
    log.purge_before(Offset(3)).unwrap();
    assert_eq!(
        log.start_offset(),
        Offset(25),
        "purging below the start is a no-op"
    );
    let error = log.purge_before(Offset(61)).unwrap_err();
    assert!(
        matches!(error, LogError::OffsetOutOfRange { requested: 61, .. }),
        "{error}"
    );
    drop(log);
    let log = fixture.open(small_config(1000));
    assert_eq!(log.start_offset(), Offset(25));
    assert_eq!(read_all(&log, 1), written[12..]);
}

/// Purging up to the end leaves an empty log that keeps its offsets and term.
pub fn purge_everything_then_append(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(small_config(1 << 20));
    for i in 0..5 {
        append(&mut log, i, 2, 0, 7);
    }
    log.purge_before(Offset(10)).unwrap();
    assert_eq!(
        (log.start_offset(), log.next_offset(), log.last_term()),
        (Offset(10), Offset(10), Term(7))
    );
    assert_eq!(log.size_bytes(), 0);
    drop(log);
    let mut log = fixture.open(small_config(1 << 20));
    assert_eq!(
        (log.start_offset(), log.next_offset(), log.last_term()),
        (Offset(10), Offset(10), Term(7))
    );
    let bytes = append(&mut log, 9, 1, 0, 7);
    assert_eq!(header(&bytes).base_offset, 10);
    assert_eq!(read_all(&log, 1), vec![bytes]);
}

/// Reset empties the log and restarts it at an offset, term and Raft
/// index, durably.
pub fn reset_restarts_the_log_at_an_offset(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(small_config(1000));
    for i in 0..30 {
        append(&mut log, i, 2, 0, 1);
    }
    log.reset(Offset(1000), Term(9), 50).unwrap();
    assert_eq!(
        (log.start_offset(), log.next_offset(), log.last_term()),
        (Offset(1000), Offset(1000), Term(9))
    );
    assert_eq!(log.last_raft_index(), 49);
    assert_eq!(names_with(&*fixture.storage, ".log"), vec![log_name(1000)]);
    let error = log.read(Offset(0), 100).unwrap_err();
    assert!(
        matches!(error, LogError::OffsetOutOfRange { .. }),
        "{error}"
    );
    drop(log);
    let mut log = fixture.open(small_config(1000));
    assert_eq!(
        (log.start_offset(), log.next_offset(), log.last_term()),
        (Offset(1000), Offset(1000), Term(9))
    );
    assert_eq!(log.last_raft_index(), 49);
    let mut bytes = batch(1, 1, 0);
    assert!(matches!(
        log.append(&mut bytes, Term(8)),
        Err(LogError::TermWentBackwards { .. })
    ));
    let bytes = append(&mut log, 1, 1, 0, 9);
    assert_eq!(header(&bytes).raft_index, 50);
    assert_eq!(read_all(&log, 1), vec![bytes]);
    log.reset(Offset(0), Term(0), 1).unwrap();
    assert_eq!(
        (log.start_offset(), log.next_offset(), log.last_raft_index()),
        (Offset(0), Offset(0), 0)
    );
}

/// Size retention deletes the oldest whole segments while over the limit.
pub fn retention_by_size_deletes_oldest_segments(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(small_config(1000));
    let written: Vec<Vec<u8>> = (0..40).map(|i| append(&mut log, i, 2, 0, 1)).collect();
    let total = log.size_bytes();
    let mut config = small_config(1000);
    config.retention_bytes = Some(total / 2);
    drop(log);
    let mut log = fixture.open(config);
    let deleted = log.apply_retention(0).unwrap();
    assert!(deleted > 0);
    assert!(log.size_bytes() <= total / 2);
    let first = names_with(&*fixture.storage, ".log").remove(0);
    let base: u64 = first.trim_end_matches(".log").parse().unwrap();
    assert_eq!(log.start_offset(), Offset(base));
    let served = read_all(&log, 1);
    assert_eq!(served, written[written.len() - served.len()..]);
    assert_eq!(log.apply_retention(0).unwrap(), 0);
    drop(log);
    let log = fixture.open(small_config(1000));
    assert_eq!(log.start_offset(), Offset(base));
}

/// Age retention deletes segments whose newest record is too old, oldest
/// first, stopping at the first young one.
pub fn retention_by_age_deletes_expired_segments(factory: Factory) {
    let fixture = factory();
    let mut config = small_config(1000);
    config.retention_ms = Some(1000);
    let mut log = fixture.open(config);
    for i in 0..40 {
        append(&mut log, i, 2, (i as i64) * 100, 1);
    }
    let segments = log.segment_count();
    assert_eq!(
        log.apply_retention(1000).unwrap(),
        0,
        "nothing older than 0 ms"
    );
    let deleted = log.apply_retention(3000).unwrap();
    assert!(deleted > 0 && deleted < segments);
    // Every remaining record but the active segment's is newer than 2000.
    let served = read_all(&log, 1);
    let first = citystream_record::RecordBatch::from_bytes(served[0].clone()).unwrap();
    assert!(
        first.header().max_timestamp_ms >= 1000,
        "{}",
        first.header().max_timestamp_ms
    );
    assert!(log.apply_retention(i64::MAX).unwrap() > 0);
    assert_eq!(log.segment_count(), 1);
}

/// Retention keeps the active segment even when everything has expired.
pub fn retention_never_deletes_the_active_segment(factory: Factory) {
    let fixture = factory();
    let mut config = small_config(1 << 20);
    config.retention_ms = Some(1);
    config.retention_bytes = Some(1);
    let mut log = fixture.open(config);
    let bytes = append(&mut log, 0, 3, 0, 1);
    assert_eq!(log.apply_retention(i64::MAX).unwrap(), 0);
    assert_eq!(read_all(&log, 1), vec![bytes]);
}

/// Every fsync policy appends, syncs and reopens to the same data.
pub fn sync_under_every_policy_keeps_data(factory: Factory) {
    for fsync in [
        FsyncPolicy::Always,
        FsyncPolicy::Interval { interval_ms: 5 },
        FsyncPolicy::Never,
    ] {
        let fixture = factory();
        let mut config = small_config(1000);
        config.fsync = fsync;
        let mut log = fixture.open(config.clone());
        let written: Vec<Vec<u8>> = (0..20).map(|i| append(&mut log, i, 2, 0, 1)).collect();
        log.sync().unwrap();
        drop(log);
        let log = fixture.open(config);
        assert_eq!(read_all(&log, 1), written, "{fsync:?}");
    }
}

/// With `segment_roll_ms`, the active segment rolls once its first batch
/// is more than the setting older than the clock; never without the
/// setting, when empty or while young. The rolled log reopens the same.
pub fn roll_if_older_rolls_an_old_active_segment(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(small_config(1 << 20));
    // Timestamps 1000 and 1001: the batch's time is 1001.
    let mut written = vec![append(&mut log, 0, 2, 1_000, 1)];
    assert!(!log.roll_if_older(i64::MAX).unwrap(), "no setting");
    drop(log);
    let config = LogConfig {
        segment_roll_ms: Some(100),
        ..small_config(1 << 20)
    };
    let mut log = fixture.open(config.clone());
    assert!(
        !log.roll_if_older(1_101).unwrap(),
        "exactly the setting old"
    );
    assert!(log.roll_if_older(1_102).unwrap());
    assert_eq!(log.segment_count(), 2);
    assert!(!log.roll_if_older(i64::MAX).unwrap(), "an empty segment");
    written.push(append(&mut log, 1, 1, 5_000, 1));
    assert!(!log.roll_if_older(5_050).unwrap(), "a young segment");
    assert!(log.roll_if_older(5_101).unwrap());
    drop(log);
    let log = fixture.open(config);
    assert_eq!(log.segment_count(), 3);
    assert_eq!(read_all(&log, 1 << 20), written);
}
