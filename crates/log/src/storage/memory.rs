//! [`MemoryStorage`]: files kept in memory, with a model of what a crash
//! loses. Every file remembers how many of its bytes were synced;
//! [`MemoryStorage::crash`] cuts every file back to that length, as a power
//! loss would. Creations, deletions, renames and atomic writes are treated
//! as durable at once (a simplification the file backend earns with directory fsyncs).
//!
//! Clones share the same files, so a test can keep a handle, drop the log,
//! crash the storage and reopen a log on it.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{FileSyncer, Storage, StorageFile};

#[derive(Debug, Default)]
struct MemoryFileState {
    bytes: Chunks,
    synced_len: usize,
}

/// Bytes past the first chunk live in chunks of this size.
const CHUNK_BYTES: usize = 1 << 20;

/// A file's bytes in fixed-size chunks. A growing file never moves what it
/// holds: one `Vec` doubling its way to a segment's size copied every byte
/// again at each step and touched twice the memory (a tenth of the CPU of
/// an in-memory broker under load). The first chunk grows as a `Vec` does,
/// so small files (indexes, metadata) stay small.
#[derive(Debug)]
struct Chunks {
    chunks: Vec<Vec<u8>>,
    len: usize,
    /// [`CHUNK_BYTES`]; smaller in tests.
    chunk_bytes: usize,
}

impl Default for Chunks {
    fn default() -> Chunks {
        Chunks::with_chunk_bytes(CHUNK_BYTES)
    }
}

impl Chunks {
    fn with_chunk_bytes(chunk_bytes: usize) -> Chunks {
        Chunks {
            chunks: Vec::new(),
            len: 0,
            chunk_bytes,
        }
    }

    fn from_slice(bytes: &[u8]) -> Chunks {
        let mut chunks = Chunks::default();
        chunks.extend_from_slice(bytes);
        chunks
    }

    fn len(&self) -> usize {
        self.len
    }

    fn extend_from_slice(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let full = self
                .chunks
                .last()
                .is_none_or(|last| last.len() == self.chunk_bytes);
            if full {
                let capacity = match self.chunks.is_empty() {
                    true => bytes.len().min(self.chunk_bytes),
                    false => self.chunk_bytes,
                };
                self.chunks.push(Vec::with_capacity(capacity));
            }
            let last = self
                .chunks
                .last_mut()
                .expect("a chunk with room was just ensured");
            let take = bytes.len().min(self.chunk_bytes - last.len());
            last.extend_from_slice(&bytes[..take]);
            self.len += take;
            bytes = &bytes[take..];
        }
    }

    /// Copies `buf.len()` bytes from `start` (which the caller checked).
    fn copy_to(&self, mut start: usize, buf: &mut [u8]) {
        let mut filled = 0;
        while filled < buf.len() {
            let chunk = &self.chunks[start / self.chunk_bytes][start % self.chunk_bytes..];
            let take = chunk.len().min(buf.len() - filled);
            buf[filled..filled + take].copy_from_slice(&chunk[..take]);
            filled += take;
            start += take;
        }
    }

    fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        let kept = len.div_ceil(self.chunk_bytes);
        self.chunks.truncate(kept);
        if let Some(last) = self.chunks.last_mut() {
            last.truncate(len - (kept - 1) * self.chunk_bytes);
        }
        self.len = len;
    }

    fn to_vec(&self) -> Vec<u8> {
        self.chunks.concat()
    }
}

type SharedFile = Arc<Mutex<MemoryFileState>>;

/// In-memory files; cheap to clone (clones share state).
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    files: Arc<Mutex<HashMap<String, SharedFile>>>,
}

impl MemoryStorage {
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }

    /// Simulates a power loss: every file loses its unsynced bytes. Drop the
    /// log using this storage first; open a new one afterwards.
    pub fn crash(&self) {
        for file in self.files.lock().values() {
            let mut state = file.lock();
            let synced_len = state.synced_len;
            state.bytes.truncate(synced_len);
        }
    }

    /// A copy of a file's bytes (for tests that inspect or damage files).
    pub fn file_bytes(&self, name: &str) -> Option<Vec<u8>> {
        let file = self.files.lock().get(name).cloned()?;
        let bytes = file.lock().bytes.to_vec();
        Some(bytes)
    }

    /// Replaces a file's bytes and marks them synced (to inject damage).
    pub fn set_file_bytes(&self, name: &str, bytes: impl AsRef<[u8]>) {
        let bytes = bytes.as_ref();
        let state = MemoryFileState {
            synced_len: bytes.len(),
            bytes: Chunks::from_slice(bytes),
        };
        let mut files = self.files.lock();
        match files.get(name) {
            Some(file) => *file.lock() = state,
            None => {
                files.insert(name.to_owned(), Arc::new(Mutex::new(state)));
            }
        }
    }
}

impl Storage for MemoryStorage {
    fn open(&self, name: &str, create: bool) -> io::Result<Box<dyn StorageFile>> {
        let mut files = self.files.lock();
        let file = match files.get(name) {
            Some(file) => file.clone(),
            None if create => files.entry(name.to_owned()).or_default().clone(),
            None => return Err(io::Error::new(io::ErrorKind::NotFound, name.to_owned())),
        };
        Ok(Box::new(MemoryFile { file }))
    }

    fn delete(&self, name: &str) -> io::Result<()> {
        self.files.lock().remove(name);
        Ok(())
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.files.lock().keys().cloned().collect())
    }

    fn read_whole(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(self.file_bytes(name))
    }

    fn write_atomic(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.set_file_bytes(name, bytes);
        Ok(())
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut files = self.files.lock();
        let file = files
            .remove(from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, from.to_owned()))?;
        files.insert(to.to_owned(), file);
        Ok(())
    }

    fn sync_dir(&self) -> io::Result<()> {
        Ok(())
    }

    fn location(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("memory:{name}"))
    }
}

/// A handle on one in-memory file; outlives a `delete` of its name, like an
/// open file descriptor does.
#[derive(Debug)]
struct MemoryFile {
    file: SharedFile,
}

impl StorageFile for MemoryFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.lock().bytes.extend_from_slice(bytes);
        Ok(())
    }

    fn read_at(&self, position: u64, buf: &mut [u8]) -> io::Result<()> {
        let state = self.file.lock();
        let start = usize::try_from(position).unwrap_or(usize::MAX);
        let end = start.saturating_add(buf.len());
        if end > state.bytes.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of a memory file",
            ));
        }
        state.bytes.copy_to(start, buf);
        Ok(())
    }

    fn len_bytes(&self) -> io::Result<u64> {
        Ok(self.file.lock().bytes.len() as u64)
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let mut state = self.file.lock();
        let len = usize::try_from(len).expect("memory file length fits usize");
        state.bytes.truncate(len);
        // Modelled as durable at once: the log syncs right after truncating.
        state.synced_len = state.synced_len.min(len);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_now()
    }

    fn syncer(&self) -> Arc<dyn FileSyncer> {
        Arc::clone(&self.file) as Arc<dyn FileSyncer>
    }
}

impl FileSyncer for Mutex<MemoryFileState> {
    fn sync_now(&self) -> io::Result<()> {
        let mut state = self.lock();
        state.synced_len = state.bytes.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::Chunks;

    proptest! {
        /// Appends, truncations and reads across chunk edges agree with
        /// one flat `Vec`.
        #[test]
        fn chunks_hold_what_one_vec_holds(
            steps in proptest::collection::vec((0usize..40, 0usize..100, any::<bool>()), 1..40),
        ) {
            let mut chunks = Chunks::with_chunk_bytes(16);
            let mut flat: Vec<u8> = Vec::new();
            for (i, (size, cut, truncate)) in steps.into_iter().enumerate() {
                if truncate {
                    let len = cut.min(flat.len());
                    chunks.truncate(len);
                    flat.truncate(len);
                } else {
                    let bytes: Vec<u8> = (0..size).map(|b| (b + i) as u8).collect();
                    chunks.extend_from_slice(&bytes);
                    flat.extend_from_slice(&bytes);
                }
                prop_assert_eq!(chunks.len(), flat.len());
                prop_assert_eq!(chunks.to_vec(), flat.clone());
                let start = cut.min(flat.len());
                let mut read = vec![0; (flat.len() - start).min(size)];
                chunks.copy_to(start, &mut read);
                prop_assert_eq!(&read[..], &flat[start..start + read.len()]);
            }
        }
    }
}
