//! The staged files of a snapshot prefix: `<base>.log.staged`, each a run
//! of whole batches like a segment's `.log` (no indexes: recovery builds
//! them after the swap). Chunks are checked before a byte is written,
//! appended, and fsynced before `stage_prefix` returns; on open the files
//! are checked again like segments, and a torn tail is cut.

use std::ops::ControlFlow;

use bytes::Bytes;
use citystream_record::{BatchHeader, BatchIter};

use super::StageOutcome;
use crate::scan::{Expected, raft_index_follows, scan_checked, walk_headers};
use crate::segment::{LOG_SUFFIX, file_name, io_error, parse_file_name};
use crate::storage::{Storage, StorageFile};
use crate::{LogError, PartitionLog};

/// Suffix of a staged file: `<base>.log.staged`.
pub(crate) const STAGED_SUFFIX: &str = ".staged";

/// The name of the staged file with base offset `base_offset`.
pub(crate) fn file_name_of(base_offset: u64) -> String {
    format!("{}{STAGED_SUFFIX}", file_name(base_offset, LOG_SUFFIX))
}

/// The base offset of a staged file's name, if it is one.
fn parse_staged(name: &str) -> Option<u64> {
    let log_name = name.strip_suffix(STAGED_SUFFIX)?;
    match parse_file_name(log_name)? {
        (base_offset, LOG_SUFFIX) => Some(base_offset),
        _ => None,
    }
}

#[derive(Debug)]
struct StagedFile {
    base_offset: u64,
    size_bytes: u64,
    file: Box<dyn StorageFile>,
}

/// The staged prefix `[start_offset, end_offset)`.
#[derive(Debug)]
pub(crate) struct Staged {
    start_offset: u64,
    end_offset: u64,
    /// Oldest first, never empty; the first starts at `start_offset`.
    files: Vec<StagedFile>,
    first: Option<BatchHeader>,
    last: Option<BatchHeader>,
}

impl Staged {
    pub fn start_offset(&self) -> u64 {
        self.start_offset
    }

    pub fn end_offset(&self) -> u64 {
        self.end_offset
    }

    /// Header of the first staged batch (`None` for an empty prefix).
    pub fn first_batch(&self) -> Option<BatchHeader> {
        self.first
    }

    /// Header of the last staged batch (`None` for an empty prefix).
    pub fn last_batch(&self) -> Option<BatchHeader> {
        self.last
    }

    /// Base offsets of the staged files, oldest first.
    pub fn file_bases(&self) -> impl Iterator<Item = u64> + '_ {
        self.files.iter().map(|f| f.base_offset)
    }

    /// An empty prefix at `start_offset`, in a new (emptied) file.
    fn create(storage: &dyn Storage, start_offset: u64) -> Result<Staged, LogError> {
        Ok(Staged {
            start_offset,
            end_offset: start_offset,
            files: vec![create_file(storage, start_offset)?],
            first: None,
            last: None,
        })
    }

    /// The staged files found on open, checked batch by batch: a torn or
    /// corrupt tail is cut, and files after a cut or a gap are deleted.
    pub fn recover(storage: &dyn Storage) -> Result<Option<Staged>, LogError> {
        let names = storage.list().map_err(io_error(&storage.location("")))?;
        let mut bases: Vec<u64> = names.iter().filter_map(|n| parse_staged(n)).collect();
        bases.sort_unstable();
        let mut staged: Option<Staged> = None;
        for (at, &base_offset) in bases.iter().enumerate() {
            let expected = match &staged {
                None => Expected {
                    base_offset,
                    raft_index: None,
                    term_min: 0,
                },
                Some(staged) if staged.end_offset != base_offset => {
                    delete_files(storage, &bases[at..])?;
                    break;
                }
                Some(staged) => staged.last.map_or(
                    Expected {
                        base_offset,
                        raft_index: None,
                        term_min: 0,
                    },
                    |last| Expected::after(&last),
                ),
            };
            let cut = recover_file(storage, &mut staged, base_offset, expected)?;
            if cut {
                delete_files(storage, &bases[at + 1..])?;
                break;
            }
        }
        Ok(staged)
    }

    /// Whether `bytes`, the checked chunk `[from_offset, end_offset)`, is
    /// byte for byte what is staged there.
    fn holds(
        &self,
        storage: &dyn Storage,
        from_offset: u64,
        end_offset: u64,
        bytes: &[u8],
    ) -> Result<bool, LogError> {
        if from_offset == end_offset
            || from_offset < self.start_offset
            || end_offset > self.end_offset
        {
            return Ok(false);
        }
        let at = self.files.partition_point(|f| f.base_offset <= from_offset) - 1;
        let Some(mut position) = self.files[at].position_of(from_offset)? else {
            return Ok(false);
        };
        let mut rest = bytes;
        for file in &self.files[at..] {
            let len = rest.len().min((file.size_bytes - position) as usize);
            let mut staged = vec![0u8; len];
            file.file
                .read_at(position, &mut staged)
                .map_err(io_error(&storage.location(&file_name_of(file.base_offset))))?;
            if staged != rest[..len] {
                return Ok(false);
            }
            rest = &rest[len..];
            position = 0;
            if rest.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Appends the checked chunk `bytes` (batches `headers`), rolling to a
    /// new file past `file_bytes_max`, and fsyncs what it wrote.
    fn append(
        &mut self,
        storage: &dyn Storage,
        bytes: &[u8],
        headers: &[BatchHeader],
        file_bytes_max: u64,
    ) -> Result<(), LogError> {
        let mut rest = bytes;
        for header in headers {
            let (batch, tail) = rest.split_at(header.batch_len as usize);
            rest = tail;
            let active = self.files.last_mut().expect("a staged file");
            let relative_end = header.next_offset() - active.base_offset;
            let full = active.size_bytes + u64::from(header.batch_len) > file_bytes_max
                || relative_end > u64::from(u32::MAX);
            if active.size_bytes > 0 && full {
                active.sync(storage)?;
                self.files.push(create_file(storage, header.base_offset)?);
            }
            let active = self.files.last_mut().expect("a staged file");
            let path = storage.location(&file_name_of(active.base_offset));
            active.file.append(batch).map_err(io_error(&path))?;
            active.size_bytes += u64::from(header.batch_len);
            self.first.get_or_insert(*header);
            self.last = Some(*header);
            self.end_offset = header.next_offset();
        }
        self.files.last_mut().expect("a staged file").sync(storage)
    }
}

impl StagedFile {
    /// The position of the batch starting at `offset`, if one does.
    fn position_of(&self, offset: u64) -> Result<Option<u64>, LogError> {
        let mut found = None;
        walk_headers(&*self.file, 0, self.size_bytes, |position, header| {
            if header.base_offset >= offset {
                found = (header.base_offset == offset).then_some(position);
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        })
        .map_err(|error| {
            LogError::Corrupt(format!("{}: {error:?}", file_name_of(self.base_offset)))
        })?;
        Ok(found)
    }

    fn sync(&mut self, storage: &dyn Storage) -> Result<(), LogError> {
        let path = storage.location(&file_name_of(self.base_offset));
        self.file.sync().map_err(io_error(&path))
    }
}

/// Creates (or empties) the staged file at `base_offset`.
fn create_file(storage: &dyn Storage, base_offset: u64) -> Result<StagedFile, LogError> {
    let name = file_name_of(base_offset);
    let path = storage.location(&name);
    let mut file = storage.open(&name, true).map_err(io_error(&path))?;
    file.truncate(0).map_err(io_error(&path))?;
    file.sync().map_err(io_error(&path))?;
    Ok(StagedFile {
        base_offset,
        size_bytes: 0,
        file,
    })
}

/// Checks the staged file at `base_offset` and adds it to `staged`;
/// returns whether its tail was cut.
fn recover_file(
    storage: &dyn Storage,
    staged: &mut Option<Staged>,
    base_offset: u64,
    expected: Expected,
) -> Result<bool, LogError> {
    let name = file_name_of(base_offset);
    let path = storage.location(&name);
    let mut file = storage.open(&name, false).map_err(io_error(&path))?;
    let len = file.len_bytes().map_err(io_error(&path))?;
    let (mut first, mut last) = (None, None);
    let scan = scan_checked(&*file, 0, len, expected, |_, header| {
        first.get_or_insert(*header);
        last = Some(*header);
    })
    .map_err(io_error(&path))?;
    if let Some(reason) = &scan.stop_reason {
        tracing::warn!(file = %name, %reason, "cut a torn or corrupt staged file tail");
        file.truncate(scan.end_position).map_err(io_error(&path))?;
        file.sync().map_err(io_error(&path))?;
    }
    let staged = staged.get_or_insert_with(|| Staged {
        start_offset: base_offset,
        end_offset: base_offset,
        files: Vec::new(),
        first,
        last: None,
    });
    staged.files.push(StagedFile {
        base_offset,
        size_bytes: scan.end_position,
        file,
    });
    if let Some(last) = last {
        staged
            .first
            .get_or_insert(first.expect("a first batch before the last"));
        staged.last = Some(last);
        staged.end_offset = last.next_offset();
    }
    Ok(scan.stop_reason.is_some())
}

fn delete_files(storage: &dyn Storage, bases: &[u64]) -> Result<(), LogError> {
    for &base_offset in bases {
        let name = file_name_of(base_offset);
        storage
            .delete(&name)
            .map_err(io_error(&storage.location(&name)))?;
    }
    Ok(())
}

/// Deletes every staged file in `storage`.
pub(crate) fn delete_all(storage: &dyn Storage) -> Result<(), LogError> {
    let dir = storage.location("");
    let names = storage.list().map_err(io_error(&dir))?;
    let mut bases: Vec<u64> = names.iter().filter_map(|n| parse_staged(n)).collect();
    bases.sort_unstable();
    delete_files(storage, &bases)?;
    storage.sync_dir().map_err(io_error(&dir))
}

/// Checks a chunk on its own: whole batches (header, length, CRC, records;
/// a `GAP` may hold none), dense offsets from `from_offset` by span, Raft
/// indexes that follow (a `GAP` may skip), terms that never decrease.
fn check_chunk(from_offset: u64, bytes: &[u8]) -> Result<Vec<BatchHeader>, LogError> {
    let mut headers: Vec<BatchHeader> = Vec::new();
    for batch in BatchIter::new(Bytes::copy_from_slice(bytes)) {
        let header = *batch?.header();
        match headers.last() {
            Some(previous) => check_follows(previous, &header)?,
            None if header.base_offset != from_offset => {
                return Err(LogError::NonContiguous {
                    expected: from_offset,
                    found: header.base_offset,
                });
            }
            None if header.raft_index == 0 => {
                return Err(LogError::RaftIndexNonContiguous {
                    expected: 1,
                    found: 0,
                });
            }
            None => {}
        }
        headers.push(header);
    }
    Ok(headers)
}

/// Whether `next` may follow `previous` in a log.
fn check_follows(previous: &BatchHeader, next: &BatchHeader) -> Result<(), LogError> {
    if next.base_offset != previous.next_offset() {
        return Err(LogError::NonContiguous {
            expected: previous.next_offset(),
            found: next.base_offset,
        });
    }
    if !raft_index_follows(next, previous.raft_index) {
        return Err(LogError::RaftIndexNonContiguous {
            expected: previous.raft_index + 1,
            found: next.raft_index,
        });
    }
    if next.term < previous.term {
        return Err(LogError::TermWentBackwards {
            batch_term: next.term,
            last_term: previous.term,
        });
    }
    Ok(())
}

impl PartitionLog {
    pub(crate) fn stage_chunk(
        &mut self,
        first: bool,
        from_offset: u64,
        bytes: &[u8],
    ) -> Result<StageOutcome, LogError> {
        let headers = check_chunk(from_offset, bytes)?;
        let end_offset = headers.last().map_or(from_offset, BatchHeader::next_offset);
        if let Some(staged) = &self.staged
            && staged.holds(&*self.storage, from_offset, end_offset, bytes)?
        {
            return Ok(StageOutcome::AlreadyStaged);
        }
        if first {
            self.discard_staged()?;
            self.staged = Some(Staged::create(&*self.storage, from_offset)?);
        }
        let staged = self.staged.as_mut().ok_or(LogError::NothingStaged)?;
        if from_offset != staged.end_offset {
            return Err(LogError::StagedMismatch {
                from_offset,
                end_offset,
                staged_start: staged.start_offset,
                staged_end: staged.end_offset,
            });
        }
        if let (Some(last), Some(next)) = (&staged.last, headers.first()) {
            check_follows(last, next)?;
        }
        let appended = staged.append(
            &*self.storage,
            bytes,
            &headers,
            self.config.segment_bytes_max,
        );
        if appended.is_err() {
            // The files' end is unknown; the sender starts over with `first`.
            self.staged = None;
        }
        appended.map(|()| StageOutcome::Staged)
    }
}
