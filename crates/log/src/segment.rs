//! One segment: a `.log` file of whole batches plus its offset and time
//! indexes, all named by the segment's base offset. The segment appends,
//! truncates, locates offsets and timestamps and recovers itself on open
//! (`segment/recover.rs`).
//!
//! It does not decide when to roll, what to delete or which offsets a caller
//! may see (the log does), and it trusts the bytes below `size_bytes`: they
//! were CRC-checked when appended or recovered.

use std::io;
use std::ops::ControlFlow;
use std::path::PathBuf;

use citystream_record::{BATCH_HEADER_LEN, BatchHeader};

use crate::LogError;
use crate::index::{IndexFile, OffsetEntry, TimeEntry};
use crate::scan::{WalkError, walk_headers};
use crate::storage::{Storage, StorageFile};

mod recover;

/// Digits of a base offset in a file name (`u64::MAX` has 20).
const NAME_DIGITS: usize = 20;
pub(crate) const LOG_SUFFIX: &str = ".log";
pub(crate) const INDEX_SUFFIX: &str = ".index";
pub(crate) const TIME_INDEX_SUFFIX: &str = ".timeindex";

/// File name of a segment's file with `suffix`, e.g. `00000000000000000042.log`.
pub(crate) fn file_name(base_offset: u64, suffix: &str) -> String {
    format!("{base_offset:0NAME_DIGITS$}{suffix}")
}

/// The base offset and suffix of a segment file name, if it is one.
pub(crate) fn parse_file_name(name: &str) -> Option<(u64, &'static str)> {
    [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX]
        .into_iter()
        .find_map(|suffix| {
            let digits = name.strip_suffix(suffix)?;
            let all_digits =
                digits.len() == NAME_DIGITS && digits.bytes().all(|b| b.is_ascii_digit());
            all_digits.then(|| digits.parse().ok().map(|base| (base, suffix)))?
        })
}

/// Maps an I/O error to a [`LogError`] naming `path`.
pub(crate) fn io_error(path: &std::path::Path) -> impl FnOnce(io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The sparse indexes and the running state that decides when to extend them.
#[derive(Debug)]
struct Indexer {
    offsets: IndexFile<OffsetEntry>,
    times: IndexFile<TimeEntry>,
    last_indexed_position: u64,
    max_timestamp_ms: i64,
}

impl Indexer {
    /// Accounts for the batch at `position`; indexes it if at least
    /// `interval_bytes` were written since the last indexed batch. The first
    /// batch (position 0) needs no entry.
    fn observe(
        &mut self,
        base_offset: u64,
        position: u64,
        header: &BatchHeader,
        interval_bytes: u32,
    ) {
        self.max_timestamp_ms = self.max_timestamp_ms.max(header.max_timestamp_ms);
        let since = position.saturating_sub(self.last_indexed_position);
        if position <= self.last_indexed_position || since < u64::from(interval_bytes) {
            return;
        }
        let relative_offset = u32::try_from(header.base_offset - base_offset)
            .expect("the log rolls before relative offsets overflow u32");
        let position_u32 =
            u32::try_from(position).expect("the log rolls before positions overflow u32");
        self.offsets.push(OffsetEntry {
            relative_offset,
            position: position_u32,
        });
        if self
            .times
            .last()
            .is_none_or(|e| self.max_timestamp_ms > e.timestamp_ms)
        {
            self.times.push(TimeEntry {
                timestamp_ms: self.max_timestamp_ms,
                relative_offset,
            });
        }
        self.last_indexed_position = position;
    }

    fn flush(&mut self) -> io::Result<()> {
        self.offsets.flush()?;
        self.times.flush()
    }
}

#[derive(Debug)]
pub(crate) struct Segment {
    base_offset: u64,
    next_offset: u64,
    size_bytes: u64,
    /// Raft index of the first batch (`None` while empty): the key by which
    /// the log binary-searches its segments for a Raft index.
    first_raft_index: Option<u64>,
    /// Header of the last batch (`None` while empty).
    last_batch: Option<BatchHeader>,
    log: Box<dyn StorageFile>,
    log_path: PathBuf,
    indexer: Indexer,
    /// Mutations (appends, truncations, recovered bytes) so far; the file is
    /// synced when `synced_writes` caught up with it.
    writes: u64,
    /// `writes` as of the last fsync that completed.
    synced_writes: u64,
    /// A failed write could not be undone; the file end is unknown.
    failed: bool,
}

impl Segment {
    /// Creates an empty segment (emptying leftover files of the same name).
    pub fn create(storage: &dyn Storage, base_offset: u64) -> Result<Segment, LogError> {
        let (log, log_path) = open_file(storage, base_offset, LOG_SUFFIX)?;
        let mut segment = Segment::with_indexes(
            storage,
            base_offset,
            log,
            log_path,
            IndexFile::empty,
            IndexFile::empty,
        )?;
        segment
            .log
            .truncate(0)
            .map_err(io_error(&segment.log_path))?;
        Ok(segment)
    }

    fn with_indexes(
        storage: &dyn Storage,
        base_offset: u64,
        log: Box<dyn StorageFile>,
        log_path: PathBuf,
        offsets: impl FnOnce(Box<dyn StorageFile>) -> io::Result<IndexFile<OffsetEntry>>,
        times: impl FnOnce(Box<dyn StorageFile>) -> io::Result<IndexFile<TimeEntry>>,
    ) -> Result<Segment, LogError> {
        let (file, path) = open_file(storage, base_offset, INDEX_SUFFIX)?;
        let offsets = offsets(file).map_err(io_error(&path))?;
        let (file, path) = open_file(storage, base_offset, TIME_INDEX_SUFFIX)?;
        let times = times(file).map_err(io_error(&path))?;
        Ok(Segment {
            base_offset,
            next_offset: base_offset,
            size_bytes: 0,
            first_raft_index: None,
            last_batch: None,
            log,
            log_path,
            indexer: Indexer {
                offsets,
                times,
                last_indexed_position: 0,
                max_timestamp_ms: i64::MIN,
            },
            writes: 0,
            synced_writes: 0,
            failed: false,
        })
    }
}

fn open_file(
    storage: &dyn Storage,
    base_offset: u64,
    suffix: &str,
) -> Result<(Box<dyn StorageFile>, PathBuf), LogError> {
    let name = file_name(base_offset, suffix);
    let path = storage.location(&name);
    let file = storage.open(&name, true).map_err(io_error(&path))?;
    Ok((file, path))
}

/// A batch found in a segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Located {
    pub position: u64,
    pub header: BatchHeader,
}

impl Segment {
    pub fn base_offset(&self) -> u64 {
        self.base_offset
    }

    /// Offset after the segment's last record.
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.size_bytes == 0
    }

    /// Largest record timestamp in the segment (`i64::MIN` if empty).
    pub fn max_timestamp_ms(&self) -> i64 {
        self.indexer.max_timestamp_ms
    }

    /// Header of the segment's last batch.
    pub fn last_batch(&self) -> Option<BatchHeader> {
        self.last_batch
    }

    /// Raft index of the segment's first batch.
    pub fn first_raft_index(&self) -> Option<u64> {
        self.first_raft_index
    }

    /// The sparse offset index, in order (the first batch, at position 0,
    /// has no entry).
    pub fn offset_index(&self) -> &[OffsetEntry] {
        self.indexer.offsets.entries()
    }

    pub fn log_path(&self) -> &std::path::Path {
        &self.log_path
    }

    /// Appends one checked batch whose header is `header`; extends the
    /// indexes in memory. If the write fails, the file is cut back.
    pub fn append(
        &mut self,
        batch: &[u8],
        header: &BatchHeader,
        interval_bytes: u32,
    ) -> Result<(), LogError> {
        assert_eq!(header.base_offset, self.next_offset, "batches are dense");
        assert_eq!(batch.len(), header.batch_len as usize);
        if self.failed {
            let error =
                io::Error::other("an earlier write failed and could not be undone; reopen the log");
            return Err(io_error(&self.log_path)(error));
        }
        let position = self.size_bytes;
        if let Err(error) = self.log.append(batch) {
            self.failed = self.log.truncate(position).is_err();
            return Err(io_error(&self.log_path)(error));
        }
        self.size_bytes += batch.len() as u64;
        self.next_offset = header.next_offset();
        self.first_raft_index.get_or_insert(header.raft_index);
        self.last_batch = Some(*header);
        self.writes += 1;
        self.indexer
            .observe(self.base_offset, position, header, interval_bytes);
        Ok(())
    }

    /// The batch containing `offset`: the nearest index entry below it, then
    /// headers forward.
    pub fn locate(&self, offset: u64) -> Result<Located, LogError> {
        assert!(
            self.base_offset <= offset && offset < self.next_offset,
            "offset {offset} outside segment"
        );
        let relative_offset = u32::try_from(offset - self.base_offset).unwrap_or(u32::MAX);
        let from = self
            .indexer
            .offsets
            .floor(relative_offset)
            .map_or(0, |e| u64::from(e.position));
        let mut found = None;
        self.walk(from, |position, header| {
            if header.next_offset() > offset {
                found = Some(Located {
                    position,
                    header: *header,
                });
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        })?;
        match found {
            Some(located) if located.header.base_offset <= offset => Ok(located),
            _ => Err(self.corrupt(format!("offset {offset} not found by its index"))),
        }
    }

    /// First offset `>= start_offset` of the first batch whose max timestamp
    /// is `>= timestamp_ms`.
    pub fn offset_for_timestamp(
        &self,
        timestamp_ms: i64,
        start_offset: u64,
    ) -> Result<Option<u64>, LogError> {
        if self.max_timestamp_ms() < timestamp_ms || self.next_offset <= start_offset {
            return Ok(None);
        }
        let indexer = &self.indexer;
        let from = indexer
            .times
            .last_older_than(timestamp_ms)
            .and_then(|e| indexer.offsets.floor(e.relative_offset))
            .map_or(0, |e| u64::from(e.position));
        let mut found = None;
        self.walk(from, |_, header| {
            if header.next_offset() > start_offset && header.max_timestamp_ms >= timestamp_ms {
                found = Some(header.base_offset.max(start_offset));
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        })?;
        Ok(found)
    }

    /// Visits the headers of the batches from `position` to the end.
    pub fn walk(
        &self,
        position: u64,
        visit: impl FnMut(u64, &BatchHeader) -> ControlFlow<()>,
    ) -> Result<(), LogError> {
        walk_headers(&*self.log, position, self.size_bytes, visit).map_err(|error| match error {
            WalkError::Io(source) => io_error(&self.log_path)(source),
            WalkError::BadHeader { position, error } => {
                self.corrupt(format!("bad batch header at byte {position}: {error}"))
            }
            WalkError::PastEnd { position } => {
                self.corrupt(format!("batch at byte {position} runs past the end"))
            }
        })
    }

    /// Reads `len` bytes at `position` (within the segment).
    pub fn read_at(&self, position: u64, buf: &mut [u8]) -> Result<(), LogError> {
        assert!(
            position + buf.len() as u64 <= self.size_bytes,
            "read past the segment end"
        );
        self.log
            .read_at(position, buf)
            .map_err(io_error(&self.log_path))
    }

    /// Cuts the segment at `position`, the start of the batch with base
    /// offset `next_offset` (or the segment end), dropping index entries of
    /// removed batches first so an index never points past the log.
    pub fn truncate(&mut self, position: u64, next_offset: u64) -> Result<(), LogError> {
        assert!(position <= self.size_bytes && next_offset >= self.base_offset);
        let path = self.log_path.clone();
        let relative_end = next_offset - self.base_offset;
        let indexer = &mut self.indexer;
        let keep = indexer
            .offsets
            .entries()
            .partition_point(|e| u64::from(e.position) < position);
        indexer.offsets.truncate(keep).map_err(io_error(&path))?;
        let keep = indexer
            .times
            .entries()
            .partition_point(|e| u64::from(e.relative_offset) < relative_end);
        indexer.times.truncate(keep).map_err(io_error(&path))?;
        indexer.last_indexed_position = indexer.offsets.last().map_or(0, |e| u64::from(e.position));
        indexer.max_timestamp_ms = indexer.times.last().map_or(i64::MIN, |e| e.timestamp_ms);
        let (mut max_timestamp_ms, mut last_batch) = (indexer.max_timestamp_ms, None);
        walk_headers(
            &*self.log,
            indexer.last_indexed_position,
            position,
            |_, header| {
                max_timestamp_ms = max_timestamp_ms.max(header.max_timestamp_ms);
                last_batch = Some(*header);
                ControlFlow::Continue(())
            },
        )
        .map_err(|e| corrupt_error(&path, format!("cannot walk to the truncation point: {e:?}")))?;
        self.log.truncate(position).map_err(io_error(&path))?;
        self.indexer.max_timestamp_ms = max_timestamp_ms;
        self.size_bytes = position;
        self.next_offset = next_offset;
        self.last_batch = last_batch;
        if position == 0 {
            self.first_raft_index = None;
        }
        self.writes += 1;
        Ok(())
    }

    /// Writes index entries not yet in their files.
    pub fn flush_indexes(&mut self) -> Result<(), LogError> {
        self.indexer.flush().map_err(io_error(&self.log_path))
    }

    /// Flushes the indexes and fsyncs the log file if anything was written.
    pub fn sync(&mut self) -> Result<(), LogError> {
        self.flush_indexes()?;
        if self.writes != self.synced_writes {
            self.log.sync().map_err(io_error(&self.log_path))?;
            self.synced_writes = self.writes;
        }
        Ok(())
    }

    /// First half of a sync that does not hold the log: flushes the indexes
    /// and returns what to fsync, if anything was written.
    pub fn begin_sync(&mut self) -> Result<Option<SegmentSync>, LogError> {
        self.flush_indexes()?;
        if self.writes == self.synced_writes {
            return Ok(None);
        }
        Ok(Some(SegmentSync {
            base_offset: self.base_offset,
            writes: self.writes,
            syncer: self.log.syncer(),
            path: self.log_path.clone(),
        }))
    }

    /// Records that an fsync begun at `writes` completed. Writes made after
    /// it began stay unsynced until a later sync covers them.
    pub fn finish_sync(&mut self, writes: u64) {
        self.synced_writes = self.synced_writes.max(writes.min(self.writes));
    }

    /// Deletes the segment's files.
    pub fn delete(self, storage: &dyn Storage) -> Result<(), LogError> {
        delete_files(storage, self.base_offset)
    }

    /// The header of the batch at `position` (a batch boundary below the
    /// segment end, e.g. from the offset index).
    pub fn header_at_position(&self, position: u64) -> Result<BatchHeader, LogError> {
        let mut head = [0u8; BATCH_HEADER_LEN];
        if position + BATCH_HEADER_LEN as u64 > self.size_bytes {
            return Err(self.corrupt(format!("no batch header at byte {position}")));
        }
        self.read_at(position, &mut head)?;
        BatchHeader::decode(&head)
            .map_err(|e| self.corrupt(format!("bad batch header at byte {position}: {e}")))
    }

    pub fn corrupt(&self, what: String) -> LogError {
        corrupt_error(&self.log_path, what)
    }
}

/// One segment's pending fsync, taken by [`Segment::begin_sync`].
#[derive(Debug)]
pub(crate) struct SegmentSync {
    pub base_offset: u64,
    pub writes: u64,
    syncer: std::sync::Arc<dyn crate::storage::FileSyncer>,
    path: PathBuf,
}

impl SegmentSync {
    pub fn run(&self) -> Result<(), LogError> {
        self.syncer.sync_now().map_err(io_error(&self.path))
    }
}

fn corrupt_error(path: &std::path::Path, what: String) -> LogError {
    LogError::Corrupt(format!("{}: {what}", path.display()))
}

/// Deletes the files of the segment at `base_offset`, the log first (index
/// files without a log are removed as orphans on the next open).
pub(crate) fn delete_files(storage: &dyn Storage, base_offset: u64) -> Result<(), LogError> {
    for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
        let name = file_name(base_offset, suffix);
        storage
            .delete(&name)
            .map_err(io_error(&storage.location(&name)))?;
    }
    Ok(())
}
