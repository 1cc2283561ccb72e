//! The [`Storage`] abstraction: a flat namespace of named byte files that the
//! segment and index code is written against, so the same log logic runs on
//! real files ([`FileStorage`]) and in memory ([`MemoryStorage`]).
//!
//! This module owns only the traits. It knows nothing about segments,
//! batches or offsets; names are opaque strings chosen by the log.

mod file;
mod memory;

use std::fmt::Debug;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

pub use file::FileStorage;
pub(crate) use file::TEMP_SUFFIX;
pub use memory::MemoryStorage;

/// A directory of named byte files.
///
/// Durability contract (both backends honour it): bytes appended to a file
/// survive a crash once [`StorageFile::sync`] returned; a file created by
/// [`Storage::open`] with `create` exists after a crash once `open` returned;
/// [`Storage::write_atomic`] replaces a whole file atomically and durably;
/// deletions and renames are durable after [`Storage::sync_dir`].
pub trait Storage: Send + Sync + Debug {
    /// Opens `name`; creates it empty if `create` and it does not exist.
    /// Fails with [`io::ErrorKind::NotFound`] if it is missing and `!create`.
    fn open(&self, name: &str, create: bool) -> io::Result<Box<dyn StorageFile>>;

    /// Removes `name`; succeeds if it does not exist.
    fn delete(&self, name: &str) -> io::Result<()>;

    /// Names of every file, in no particular order.
    fn list(&self) -> io::Result<Vec<String>>;

    /// The whole content of a small file, or `None` if it does not exist.
    fn read_whole(&self, name: &str) -> io::Result<Option<Vec<u8>>>;

    /// Replaces `name` with `bytes` atomically (temp file, sync, rename).
    fn write_atomic(&self, name: &str, bytes: &[u8]) -> io::Result<()>;

    /// Renames `from` to `to` atomically, replacing `to` if it exists.
    /// Fails with [`io::ErrorKind::NotFound`] if `from` does not exist.
    /// Open handles on either file keep reading the bytes they had.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;

    /// Makes creations, deletions and renames durable.
    fn sync_dir(&self) -> io::Result<()>;

    /// A path naming `name` in error messages.
    fn location(&self, name: &str) -> PathBuf;
}

/// One open byte file. Reads take `&self` so a log can serve reads while
/// shared; writes take `&mut self` because only the log's owner appends.
pub trait StorageFile: Send + Sync + Debug {
    /// Appends `bytes` at the end. A later `read_at` sees them at once.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;

    /// Fills `buf` from `position`; [`io::ErrorKind::UnexpectedEof`] if the
    /// file ends first.
    fn read_at(&self, position: u64, buf: &mut [u8]) -> io::Result<()>;

    /// Current length in bytes.
    fn len_bytes(&self) -> io::Result<u64>;

    /// Cuts the file to `len` bytes (`len` must not exceed the length).
    fn truncate(&mut self, len: u64) -> io::Result<()>;

    /// Forces appended bytes and the length to stable storage.
    fn sync(&mut self) -> io::Result<()>;

    /// A handle that fsyncs this file without borrowing it, so the log's
    /// owner can take it under its lock and run the slow fsync outside.
    fn syncer(&self) -> Arc<dyn FileSyncer>;
}

/// Forces a file's bytes, as of the call, to stable storage.
pub trait FileSyncer: Send + Sync + Debug {
    fn sync_now(&self) -> io::Result<()>;
}
