//! [`FileStorage`]: named files in one directory, read with `pread` so reads
//! take `&self`, appended with one `write` per call (no user-space buffer,
//! so a read always sees every completed append).
//!
//! It does not cache handles or data: the page cache does that.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{FileSyncer, Storage, StorageFile};

/// Suffix of the temporary file [`Storage::write_atomic`] renames into place.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// A directory of files. Creates the directory if needed.
#[derive(Debug, Clone)]
pub struct FileStorage {
    dir: PathBuf,
}

impl FileStorage {
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<FileStorage> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(FileStorage { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Storage for FileStorage {
    fn open(&self, name: &str, create: bool) -> io::Result<Box<dyn StorageFile>> {
        let path = self.dir.join(name);
        let existing = OpenOptions::new().read(true).append(true).open(&path);
        let file = match existing {
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                let file = OpenOptions::new()
                    .read(true)
                    .append(true)
                    .create(true)
                    .open(&path)?;
                // The new directory entry must be durable before anything
                // appended to the file is reported durable.
                self.sync_dir()?;
                file
            }
            other => other?,
        };
        Ok(Box::new(DiskFile {
            file: Arc::new(file),
        }))
    }

    fn delete(&self, name: &str) -> io::Result<()> {
        match fs::remove_file(self.dir.join(name)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file()
                && let Ok(name) = entry.file_name().into_string()
            {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn read_whole(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.dir.join(name)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn write_atomic(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let temp = self.dir.join(format!("{name}{TEMP_SUFFIX}"));
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, self.dir.join(name))?;
        self.sync_dir()
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        fs::rename(self.dir.join(from), self.dir.join(to))
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }

    fn location(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// An open file in append mode: every write goes to the end, whatever the
/// cursor, so `truncate` needs no seek.
#[derive(Debug)]
struct DiskFile {
    /// Shared with [`FileSyncer`] handles (`&File` implements `Write`).
    file: Arc<File>,
}

impl FileSyncer for File {
    fn sync_now(&self) -> io::Result<()> {
        self.sync_data()
    }
}

impl StorageFile for DiskFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        (&*self.file).write_all(bytes)
    }

    fn read_at(&self, position: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, position)
    }

    fn len_bytes(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn syncer(&self) -> Arc<dyn FileSyncer> {
        Arc::clone(&self.file) as Arc<dyn FileSyncer>
    }
}
