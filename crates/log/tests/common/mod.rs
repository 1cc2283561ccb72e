//! Shared test fixtures: backends behind one [`Fixture`], batch builders,
//! a reader that collects every served batch, and damage helpers that work
//! through the [`Storage`] trait so they apply to every backend.

#![allow(dead_code)]

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use citystream_log::{
    FsyncPolicy, LogConfig, MemoryStorage, Offset, PartitionLog, Storage, StorageFile, Term,
};
use citystream_record::{BatchBuilder, BatchHeader, BatchIter};

/// A storage plus whatever keeps it alive (the temp dir of a file backend).
pub struct Fixture {
    pub storage: Arc<dyn Storage>,
    pub memory: Option<MemoryStorage>,
    _dir: Option<tempfile::TempDir>,
}

impl Fixture {
    pub fn open(&self, config: LogConfig) -> PartitionLog {
        PartitionLog::open_with(self.storage.clone(), config).expect("open")
    }
}

pub type Factory = fn() -> Fixture;

pub fn file_fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = citystream_log::FileStorage::new(dir.path()).expect("file storage");
    Fixture {
        storage: Arc::new(storage),
        memory: None,
        _dir: Some(dir),
    }
}

pub fn memory_fixture() -> Fixture {
    let memory = MemoryStorage::new();
    Fixture {
        storage: Arc::new(memory.clone()),
        memory: Some(memory),
        _dir: None,
    }
}

/// A small config: segments of `segment_bytes_max`, an index entry about
/// every other small batch.
pub fn small_config(segment_bytes_max: u64) -> LogConfig {
    LogConfig {
        segment_bytes_max,
        index_interval_bytes: 256,
        fsync: FsyncPolicy::Never,
        retention_ms: None,
        retention_bytes: None,
        segment_roll_ms: None,
        compacted: false,
        compaction_lag_ms: 0,
        tombstone_retention_ms: 86_400_000,
    }
}

/// An encoded batch of `count` records with values derived from `seed`,
/// keys, a header, and timestamps from `timestamp_ms` upward.
pub fn batch(seed: u64, count: u32, timestamp_ms: i64) -> Vec<u8> {
    let mut builder = BatchBuilder::new();
    for i in 0..count {
        let value = format!("value-{seed}-{i}-{}", "x".repeat((seed % 50) as usize));
        let key = format!("key-{i}");
        builder
            .push(
                timestamp_ms + i64::from(i),
                Some(key.as_bytes()),
                value.as_bytes(),
                &[("h", b"v")],
            )
            .expect("push");
    }
    builder.finish_vec()
}

/// Appends a batch as leader; returns the stored bytes (offset, term and
/// Raft index set). Checks the batch got the next Raft index.
pub fn append(
    log: &mut PartitionLog,
    seed: u64,
    count: u32,
    timestamp_ms: i64,
    term: u64,
) -> Vec<u8> {
    let mut bytes = batch(seed, count, timestamp_ms);
    let raft_index = log.last_raft_index() + 1;
    let info = log.append(&mut bytes, Term(term)).expect("append");
    assert_eq!(
        info.last_offset.0 - info.base_offset.0 + 1,
        u64::from(count)
    );
    assert_eq!(info.raft_index, raft_index);
    assert_eq!(header(&bytes).raft_index, raft_index);
    assert_eq!(log.last_raft_index(), raft_index);
    bytes
}

/// Every batch served from the start offset to the end, read in steps of
/// `max_bytes`.
pub fn read_all(log: &PartitionLog, max_bytes: usize) -> Vec<Bytes> {
    let mut batches = Vec::new();
    let mut from = log.start_offset();
    // Each read returns at least one batch, so this ends at the log end.
    while from < log.next_offset() {
        let result = log.read(from, max_bytes).expect("read");
        assert!(!result.bytes.is_empty(), "read at {from} returned nothing");
        for batch in BatchIter::new(result.bytes) {
            let batch = batch.expect("served batches are valid");
            from = Offset(batch.header().next_offset());
            batches.push(batch.into_bytes());
        }
    }
    batches
}

pub fn header(bytes: &[u8]) -> BatchHeader {
    BatchHeader::decode(bytes).expect("header")
}

pub fn log_name(base_offset: u64) -> String {
    format!("{base_offset:020}.log")
}

/// Names of the storage's files that end with `suffix`, sorted.
pub fn names_with(storage: &dyn Storage, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = storage
        .list()
        .expect("list")
        .into_iter()
        .filter(|n| n.ends_with(suffix))
        .collect();
    names.sort();
    names
}

pub fn file_bytes(storage: &dyn Storage, name: &str) -> Vec<u8> {
    let file = storage.open(name, false).expect("open file");
    let mut bytes = vec![0; file.len_bytes().expect("len") as usize];
    file.read_at(0, &mut bytes).expect("read");
    bytes
}

/// Replaces a file's content through the trait (truncate, then append).
pub fn set_file_bytes(storage: &dyn Storage, name: &str, bytes: &[u8]) {
    let mut file: Box<dyn StorageFile> = storage.open(name, true).expect("open file");
    file.truncate(0).expect("truncate");
    file.append(bytes).expect("append");
    file.sync().expect("sync");
}

/// The active (newest) segment's `.log` name.
pub fn active_log(storage: &dyn Storage) -> String {
    names_with(storage, ".log").pop().expect("a segment")
}

/// A storage that fails every mutation after a budget, as a crash would
/// stop the process there.
#[derive(Debug)]
pub struct FailAfter {
    pub inner: Arc<dyn Storage>,
    /// Mutations still allowed; set it to start the countdown.
    pub budget: AtomicI64,
}

impl FailAfter {
    /// A wrapper that fails nothing until `budget` is set.
    pub fn new(inner: Arc<dyn Storage>) -> Arc<FailAfter> {
        Arc::new(FailAfter {
            inner,
            budget: AtomicI64::new(i64::MAX),
        })
    }

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
