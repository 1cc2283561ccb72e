//! The two sparse indexes of a segment, kept in memory and mirrored to
//! fixed-width little-endian files:
//!
//! ```text
//! .index entry (8 bytes)              .timeindex entry (12 bytes)
//!  0                4           8      0                      8                12
//!  +----------------+-----------+      +----------------------+----------------+
//!  |relative_offset |position   |      |timestamp_ms          |relative_offset |
//!  |u32             |u32        |      |i64                   |u32             |
//!  +----------------+-----------+      +----------------------+----------------+
//! ```
//!
//! `relative_offset` is a batch's base offset minus the segment's base
//! offset; `position` is where that batch starts in the `.log` file. A time
//! entry `(t, r)` says every batch up to and including the one at `r` has a
//! max timestamp `<= t`. Entries are strictly increasing in every field.
//!
//! This module does not decide *when* to add entries (the segment does) and
//! never reads the `.log` file. Entries are written to the file lazily
//! ([`IndexFile::flush`]); the files are a cache that recovery can rebuild.

use std::io;

use crate::storage::StorageFile;

/// One fixed-width index entry.
pub(crate) trait IndexEntry: Copy + std::fmt::Debug {
    const LEN: usize;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(bytes: &[u8]) -> Self;
    /// Whether `self` may follow `previous` in a valid index.
    fn follows(&self, previous: &Self) -> bool;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub timestamp_ms: i64,
    pub relative_offset: u32,
}

impl IndexEntry for OffsetEntry {
    const LEN: usize = 8;

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_le_bytes());
        out.extend_from_slice(&self.position.to_le_bytes());
    }

    fn decode(bytes: &[u8]) -> Self {
        OffsetEntry {
            relative_offset: u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes")),
            position: u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")),
        }
    }

    fn follows(&self, previous: &Self) -> bool {
        self.relative_offset > previous.relative_offset && self.position > previous.position
    }
}

impl IndexEntry for TimeEntry {
    const LEN: usize = 12;

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp_ms.to_le_bytes());
        out.extend_from_slice(&self.relative_offset.to_le_bytes());
    }

    fn decode(bytes: &[u8]) -> Self {
        TimeEntry {
            timestamp_ms: i64::from_le_bytes(bytes[0..8].try_into().expect("8 bytes")),
            relative_offset: u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")),
        }
    }

    fn follows(&self, previous: &Self) -> bool {
        self.timestamp_ms > previous.timestamp_ms && self.relative_offset > previous.relative_offset
    }
}

/// An index: entries in memory, the first `persisted` of them also in `file`.
#[derive(Debug)]
pub(crate) struct IndexFile<E> {
    entries: Vec<E>,
    persisted: usize,
    file: Box<dyn StorageFile>,
}

impl<E: IndexEntry> IndexFile<E> {
    /// Loads the longest well-formed prefix of `file` (whole entries, each
    /// following the previous one and accepted by `valid`), and cuts the
    /// file to that prefix.
    pub fn load(mut file: Box<dyn StorageFile>, valid: impl Fn(&E) -> bool) -> io::Result<Self> {
        let len = usize::try_from(file.len_bytes()?).unwrap_or(usize::MAX);
        let mut bytes = vec![0; len - len % E::LEN];
        file.read_at(0, &mut bytes)?;
        let mut entries: Vec<E> = Vec::with_capacity(bytes.len() / E::LEN);
        for chunk in bytes.chunks_exact(E::LEN) {
            let entry = E::decode(chunk);
            let ordered = entries.last().is_none_or(|last| entry.follows(last));
            if !ordered || !valid(&entry) {
                break;
            }
            entries.push(entry);
        }
        let kept_len = entries.len() * E::LEN;
        if kept_len != len {
            file.truncate(kept_len as u64)?;
        }
        Ok(IndexFile {
            persisted: entries.len(),
            entries,
            file,
        })
    }

    /// An index over an empty file.
    pub fn empty(mut file: Box<dyn StorageFile>) -> io::Result<Self> {
        file.truncate(0)?;
        Ok(IndexFile {
            entries: Vec::new(),
            persisted: 0,
            file,
        })
    }

    pub fn entries(&self) -> &[E] {
        &self.entries
    }

    pub fn last(&self) -> Option<&E> {
        self.entries.last()
    }

    pub fn push(&mut self, entry: E) {
        if let Some(last) = self.entries.last() {
            assert!(entry.follows(last), "index entry {entry:?} after {last:?}");
        }
        self.entries.push(entry);
    }

    /// Keeps the first `count` entries, in memory and in the file.
    pub fn truncate(&mut self, count: usize) -> io::Result<()> {
        self.entries.truncate(count);
        if self.persisted > count {
            self.file.truncate((count * E::LEN) as u64)?;
            self.persisted = count;
        }
        Ok(())
    }

    /// Writes entries not yet in the file (no fsync: indexes are rebuilt
    /// from the log after a crash).
    pub fn flush(&mut self) -> io::Result<()> {
        if self.persisted == self.entries.len() {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity((self.entries.len() - self.persisted) * E::LEN);
        for entry in &self.entries[self.persisted..] {
            entry.encode(&mut bytes);
        }
        self.file.append(&bytes)?;
        self.persisted = self.entries.len();
        Ok(())
    }
}

impl IndexFile<OffsetEntry> {
    /// The last entry at or before `relative_offset`, if any.
    pub fn floor(&self, relative_offset: u32) -> Option<OffsetEntry> {
        let after = self
            .entries
            .partition_point(|e| e.relative_offset <= relative_offset);
        after.checked_sub(1).map(|i| self.entries[i])
    }
}

impl IndexFile<TimeEntry> {
    /// The last entry whose timestamp is below `timestamp_ms`: every batch up
    /// to its `relative_offset` is older, so a search may start there.
    pub fn last_older_than(&self, timestamp_ms: i64) -> Option<TimeEntry> {
        let after = self
            .entries
            .partition_point(|e| e.timestamp_ms < timestamp_ms);
        after.checked_sub(1).map(|i| self.entries[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MemoryStorage, Storage};

    fn entry(relative_offset: u32, position: u32) -> OffsetEntry {
        OffsetEntry {
            relative_offset,
            position,
        }
    }

    /// Entries round-trip through the file in the documented 8-byte layout.
    #[test]
    fn offset_entries_have_the_documented_bytes() {
        let storage = MemoryStorage::new();
        let mut index = IndexFile::empty(storage.open("i", true).unwrap()).unwrap();
        index.push(entry(3, 0x0102));
        index.flush().unwrap();
        let bytes = storage.file_bytes("i").unwrap();
        assert_eq!(bytes, [3, 0, 0, 0, 0x02, 0x01, 0, 0]);
        let loaded = IndexFile::<OffsetEntry>::load(storage.open("i", false).unwrap(), |_| true);
        assert_eq!(loaded.unwrap().entries(), &[entry(3, 0x0102)]);
    }

    /// Loading keeps the longest ordered, valid prefix and cuts the file to it.
    #[test]
    fn load_keeps_the_valid_prefix() {
        let storage = MemoryStorage::new();
        let mut bytes = Vec::new();
        for e in [entry(1, 10), entry(2, 20), entry(2, 30), entry(4, 40)] {
            e.encode(&mut bytes);
        }
        bytes.push(9);
        storage.set_file_bytes("i", bytes);
        let index = IndexFile::<OffsetEntry>::load(storage.open("i", false).unwrap(), |_| true);
        assert_eq!(index.unwrap().entries(), &[entry(1, 10), entry(2, 20)]);
        assert_eq!(storage.file_bytes("i").unwrap().len(), 16);
        let index =
            IndexFile::<OffsetEntry>::load(storage.open("i", false).unwrap(), |e| e.position < 15);
        assert_eq!(index.unwrap().entries(), &[entry(1, 10)]);
    }

    /// `floor` and `last_older_than` pick the entry a search starts from.
    #[test]
    fn lookups_pick_the_entry_at_or_below() {
        let storage = MemoryStorage::new();
        let mut offsets = IndexFile::empty(storage.open("i", true).unwrap()).unwrap();
        offsets.push(entry(5, 100));
        offsets.push(entry(9, 200));
        assert_eq!(offsets.floor(4), None);
        assert_eq!(offsets.floor(5), Some(entry(5, 100)));
        assert_eq!(offsets.floor(8), Some(entry(5, 100)));
        assert_eq!(offsets.floor(u32::MAX), Some(entry(9, 200)));
        let mut times = IndexFile::empty(storage.open("t", true).unwrap()).unwrap();
        let time = |timestamp_ms, relative_offset| TimeEntry {
            timestamp_ms,
            relative_offset,
        };
        times.push(time(10, 5));
        times.push(time(20, 9));
        assert_eq!(times.last_older_than(10), None);
        assert_eq!(times.last_older_than(11), Some(time(10, 5)));
        assert_eq!(times.last_older_than(i64::MAX), Some(time(20, 9)));
    }
}
