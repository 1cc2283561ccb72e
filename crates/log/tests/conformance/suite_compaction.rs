//! Conformance: log compaction (decision 0017 §6-7) on every backend. A
//! compacted log serves exactly the model's records at their offsets, a
//! read at a removed offset leads to the next survivor, Raft lookups stay
//! consistent, and a crash at any step of the segment swap leaves the old
//! or the new log, never a mix or a loss.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use citystream_log::{
    CompactionParams, LogConfig, Offset, PartitionLog, Storage, StorageFile, Term,
};
use citystream_record::{BatchBuilder, BatchIter, hlc_from_parts, hlc_physical_ms, set_base_hlc};

use crate::common::*;

/// A record as a reader sees it: offset, key, value, HLC.
type RecordView = (u64, Vec<u8>, Option<Vec<u8>>, u64);

const RETENTION_MS: u64 = 100;

fn params() -> CompactionParams {
    CompactionParams {
        tombstone_retention_ms: RETENTION_MS,
        key_map_entries_max: 1 << 16,
    }
}

fn config() -> LogConfig {
    small_config(900)
}

/// Appends 30 batches of 1-3 records over 5 keys, one record in six a
/// tombstone, 10 ms of log time apart; several segments.
fn write_keyed_log(log: &mut PartitionLog) {
    for i in 0..30u64 {
        let mut builder = BatchBuilder::new();
        for j in 0..1 + i % 3 {
            let key = format!("key-{}", (i * 7 + j * 3) % 5);
            let value = format!("value-{i}-{j}");
            let value = ((i + j) % 6 != 0).then_some(value.as_bytes());
            let timestamp_ms = 1_000 + i as i64;
            builder
                .push_record(timestamp_ms, Some(key.as_bytes()), value, &[])
                .expect("push");
        }
        let mut bytes = builder.finish_vec();
        set_base_hlc(&mut bytes, hlc_from_parts(1_000 + 10 * i as i64, 0));
        log.append(&mut bytes, Term(1)).expect("append");
    }
    log.sync().expect("sync");
    assert!(log.segment_count() >= 3, "the log spans several segments");
}

fn records(batches: &[Bytes]) -> Vec<RecordView> {
    let mut out = Vec::new();
    for bytes in batches {
        let batch = BatchIter::new(bytes.clone()).next().unwrap().unwrap();
        for r in batch.records() {
            let value = r.value.map(<[u8]>::to_vec);
            out.push((r.offset, r.key.unwrap().to_vec(), value, r.hlc));
        }
    }
    out
}

/// The model of §2: below `horizon` keep the newest record per key and
/// drop tombstones at least the retention older than the newest HLC.
fn model(original: &[Bytes], horizon: u64) -> Vec<RecordView> {
    let reference_ms = original
        .iter()
        .map(|b| header(b))
        .filter(|h| h.next_offset() <= horizon)
        .map(|h| hlc_physical_ms(h.last_hlc()))
        .max();
    let all = records(original);
    let removed = |at: usize| {
        let (offset, key, value, hlc) = &all[at];
        let superseded = all[at + 1..].iter().any(|r| r.0 < horizon && r.1 == *key);
        let expired = value.is_none()
            && reference_ms.is_some_and(|r| hlc_physical_ms(*hlc) + RETENTION_MS as i64 <= r);
        *offset < horizon && (superseded || expired)
    };
    (0..all.len())
        .filter(|at| !removed(*at))
        .map(|at| all[at].clone())
        .collect()
}

/// The first record at or after `offset`, reading from `offset` as a
/// consumer does (skipping records below it).
fn next_record(log: &PartitionLog, offset: u64) -> Option<RecordView> {
    let mut from = Offset(offset);
    // Each read returns at least one batch, so this ends at the log end.
    while from < log.next_offset() {
        let read = log.read(from, 1 << 20).expect("read");
        let batches: Vec<Bytes> = BatchIter::new(read.bytes)
            .map(|b| b.unwrap().into_bytes())
            .collect();
        if let Some(found) = records(&batches).into_iter().find(|r| r.0 >= offset) {
            return Some(found);
        }
        from = Offset(header(batches.last().unwrap()).next_offset());
    }
    None
}

/// Compaction keeps the model's records at their offsets (in compacted and
/// gap batches), a read at any offset leads to the next survivor, the
/// active segment and Raft lookups stay right (none inside a gap), a
/// reopen serves the same, and a second pass writes nothing.
pub fn compaction_serves_the_newest_record_per_key(factory: Factory) {
    let fixture = factory();
    let mut log = fixture.open(config());
    write_keyed_log(&mut log);
    let original = read_all(&log, 1 << 20);
    let (last_raft_index, next_offset) = (log.last_raft_index(), log.next_offset());
    let active = active_log(&*fixture.storage);
    let active_bytes = file_bytes(&*fixture.storage, &active);
    let summary = log.compact(log.next_offset(), &params()).expect("compact");
    let horizon = summary.horizon.0;
    assert!(summary.segments_rewritten >= 2 && summary.bytes_removed > 0);
    assert!(
        horizon > 0 && horizon < next_offset.0,
        "only closed segments"
    );
    let expected = model(&original, horizon);
    assert!(
        expected.len() < records(&original).len(),
        "the pass removed records"
    );
    for reopen in [false, true] {
        if reopen {
            drop(log);
            log = fixture.open(config());
        }
        assert_eq!(records(&read_all(&log, 1)), expected);
        assert_eq!(records(&read_all(&log, 1 << 20)), expected);
        assert_eq!(
            (log.last_raft_index(), log.next_offset()),
            (last_raft_index, next_offset)
        );
        for offset in 0..next_offset.0 {
            let survivor = expected.iter().find(|r| r.0 >= offset).cloned();
            assert_eq!(next_record(&log, offset), survivor, "read at {offset}");
        }
        let served: Vec<_> = read_all(&log, 1 << 20).iter().map(|b| header(b)).collect();
        assert!(served.iter().any(|h| h.is_compacted() && !h.is_gap()));
        let gap = served
            .windows(2)
            .find(|pair| pair[1].is_gap() && pair[1].raft_index > pair[0].raft_index + 1)
            .map(|pair| pair[1])
            .expect("a run of removed batches became one gap");
        assert_eq!(log.locate_raft_index(gap.raft_index - 1).unwrap(), None);
        for h in served {
            assert_eq!(log.locate_raft_index(h.raft_index).unwrap(), Some(h));
        }
        for raft_index in 1..=last_raft_index {
            let found = log.locate_raft_index(raft_index).unwrap();
            assert!(
                found.is_none_or(|h| h.raft_index == raft_index),
                "index {raft_index}"
            );
        }
    }
    assert_eq!(file_bytes(&*fixture.storage, &active), active_bytes);
    let again = log
        .compact(log.next_offset(), &params())
        .expect("compact again");
    assert_eq!((again.horizon.0, again.segments_rewritten), (horizon, 0));
    assert!(names_with(&*fixture.storage, ".cleaned").is_empty());
}

/// A storage that fails every mutation after a budget, as a crash would
/// stop the process there.
#[derive(Debug)]
struct FailAfter {
    inner: Arc<dyn Storage>,
    budget: AtomicI64,
}

impl FailAfter {
    fn spend(&self) -> io::Result<()> {
        if self.budget.fetch_sub(1, Ordering::SeqCst) <= 0 {
            return Err(io::Error::other("injected crash"));
        }
        Ok(())
    }
}

impl Storage for FailAfter {
    fn open(&self, name: &str, create: bool) -> io::Result<Box<dyn StorageFile>> {
        if create {
            self.spend()?;
        }
        self.inner.open(name, create)
    }
    fn delete(&self, name: &str) -> io::Result<()> {
        self.spend()?;
        self.inner.delete(name)
    }
    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }
    fn read_whole(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        self.inner.read_whole(name)
    }
    fn write_atomic(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.spend()?;
        self.inner.write_atomic(name, bytes)
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.spend()?;
        self.inner.rename(from, to)
    }
    fn sync_dir(&self) -> io::Result<()> {
        self.spend()?;
        self.inner.sync_dir()
    }
    fn location(&self, name: &str) -> std::path::PathBuf {
        self.inner.location(name)
    }
}

/// A crash after each step of a pass (writing `.cleaned`, the manifest,
/// each delete and rename, the syncs, the reopen) leaves, after recovery,
/// either the old log or the compacted one, and no leftover file; both
/// outcomes occur.
pub fn a_crash_at_any_step_of_the_swap_leaves_old_or_new(factory: Factory) {
    let (mut saw_old, mut saw_new) = (false, false);
    // Each round allows one more mutation; the pass makes fewer than 200.
    for budget in 0..200 {
        let fixture = factory();
        let failing = Arc::new(FailAfter {
            inner: fixture.storage.clone(),
            budget: AtomicI64::new(i64::MAX),
        });
        let mut log = PartitionLog::open_with(failing.clone(), config()).expect("open");
        write_keyed_log(&mut log);
        let original = read_all(&log, 1 << 20);
        failing.budget.store(budget, Ordering::SeqCst);
        let outcome = log.compact(log.next_offset(), &params());
        drop(log);
        let horizon = match outcome {
            Ok(summary) => summary.horizon.0,
            Err(_) => {
                if let Some(memory) = &fixture.memory {
                    memory.crash();
                }
                let mut log = fixture.open(config());
                let served = records(&read_all(&log, 1 << 20));
                let compacted = log.compact(log.next_offset(), &params()).unwrap().horizon.0;
                if served == records(&original) {
                    saw_old = true;
                } else {
                    assert_eq!(served, model(&original, compacted), "budget {budget}");
                    saw_new = true;
                }
                for suffix in [".cleaned", "log-swap"] {
                    assert!(names_with(&*fixture.storage, suffix).is_empty(), "{suffix}");
                }
                continue;
            }
        };
        assert!(saw_old && saw_new, "a crash left the old and the new log");
        let log = fixture.open(config());
        assert_eq!(records(&read_all(&log, 1 << 20)), model(&original, horizon));
        return;
    }
    panic!("the pass never completed within the budget");
}
