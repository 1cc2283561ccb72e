//! The log shared as the broker shares it: behind a `RwLock`, one writer
//! appending and rolling segments while readers follow the log end.

mod common;

use std::sync::Arc;

use citystream_log::{Offset, PartitionLog, Term};
use citystream_record::BatchIter;
use common::*;
use parking_lot::RwLock;

const BATCHES: u64 = 400;
const READERS: usize = 2;

/// Readers under the read lock always see whole, dense, valid batches
/// while the writer appends and rolls under the write lock.
#[test]
fn readers_follow_a_writer_under_a_rwlock() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config(4000)).unwrap();
    let log = Arc::new(RwLock::new(log));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let log = log.clone();
            std::thread::spawn(move || follow(&log))
        })
        .collect();
    for seed in 0..BATCHES {
        let mut bytes = batch(seed, 2, 0);
        log.write().append(&mut bytes, Term(1)).unwrap();
    }
    for reader in readers {
        assert_eq!(reader.join().unwrap(), BATCHES * 2);
    }
    assert!(log.read().segment_count() > 5);
}

/// Reads from 0 until every batch was seen; returns the offset reached.
fn follow(log: &RwLock<PartitionLog>) -> u64 {
    let mut from = 0;
    // Ends when the writer's last batch was read; the writer never stops early.
    while from < BATCHES * 2 {
        let bytes = log.read().read(Offset(from), 700).unwrap().bytes;
        for batch in BatchIter::new(bytes) {
            let batch = batch.expect("a whole, valid batch");
            assert_eq!(batch.header().base_offset, from);
            from = batch.header().next_offset();
        }
        std::thread::yield_now();
    }
    from
}
