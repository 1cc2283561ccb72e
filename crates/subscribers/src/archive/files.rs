//! [`ArchiveFiles`]: the archiver's open files, one per station
//! (`<dir>/<station>.csv`, kept open for appending). On first use a file
//! is checked and repaired: a missing or torn header is written afresh, a
//! torn last row is cut, and the last row's offset is returned so the
//! archiver skips what the file already holds. Rows are buffered;
//! [`ArchiveFiles::sync`] flushes them and fsyncs every file written since
//! the last sync (and the directory once a file was created), which the
//! runner does before it commits offsets.

use std::collections::HashMap;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use tokio::fs::{File, OpenOptions};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufWriter};

use crate::archive::csv::{csv_field_count, csv_header};
use crate::archive::{Head, check_head, recover_rows};
use crate::contract::Kind;
use crate::error::SubscriberError;

/// Bytes read from a file's end to find its last row (rows are far shorter).
const TAIL_BYTES: u64 = 64 * 1024;

struct StationFile {
    path: PathBuf,
    writer: BufWriter<File>,
    /// Written since the last sync.
    dirty: bool,
}

/// What opening a station's file found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// It was open already.
    Already,
    /// Opened now; its last row holds this offset (`None`: no rows yet).
    Now { last_offset: Option<u64> },
}

pub struct ArchiveFiles {
    dir: PathBuf,
    fsync: bool,
    files: HashMap<String, StationFile>,
    /// A file was created since the last sync (the directory needs one).
    created: bool,
}

impl ArchiveFiles {
    pub fn new(dir: PathBuf, fsync: bool) -> ArchiveFiles {
        ArchiveFiles {
            dir,
            fsync,
            files: HashMap::new(),
            created: false,
        }
    }

    /// Opens (creating, or checking and repairing) `station`'s file.
    /// `station` must be a valid station id (a safe file name).
    pub async fn open(&mut self, station: &str, kind: Kind) -> Result<Opened, SubscriberError> {
        if self.files.contains_key(station) {
            return Ok(Opened::Already);
        }
        let path = self.dir.join(format!("{station}.csv"));
        let failed = |source| SubscriberError::Archive {
            path: path.clone(),
            source,
        };
        tokio::fs::create_dir_all(&self.dir).await.map_err(failed)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .await
            .map_err(failed)?;
        let (last_offset, created) = repair(&mut file, &path, kind).await?;
        self.created |= created;
        file.seek(SeekFrom::End(0)).await.map_err(failed)?;
        let writer = BufWriter::new(file);
        let dirty = created;
        self.files.insert(
            station.to_owned(),
            StationFile {
                path,
                writer,
                dirty,
            },
        );
        tracing::debug!(station, ?last_offset, "archive file open");
        Ok(Opened::Now { last_offset })
    }

    /// Appends a line to an open station's file (buffered until `sync`).
    pub async fn append(&mut self, station: &str, line: &str) -> Result<(), SubscriberError> {
        let file = self
            .files
            .get_mut(station)
            .expect("a station's file is opened before rows are appended");
        file.dirty = true;
        let written = file.writer.write_all(line.as_bytes()).await;
        written.map_err(|source| SubscriberError::Archive {
            path: file.path.clone(),
            source,
        })
    }

    /// Flushes every file written since the last sync and, with `fsync`,
    /// forces it (and the directory, after a creation) to the disk.
    pub async fn sync(&mut self) -> Result<(), SubscriberError> {
        for file in self.files.values_mut().filter(|file| file.dirty) {
            let failed = |source| SubscriberError::Archive {
                path: file.path.clone(),
                source,
            };
            file.writer.flush().await.map_err(failed)?;
            if self.fsync {
                file.writer.get_ref().sync_data().await.map_err(failed)?;
            }
            file.dirty = false;
        }
        if self.created && self.fsync {
            let directory = File::open(&self.dir).await;
            let synced = match directory {
                Ok(directory) => directory.sync_all().await,
                Err(error) => Err(error),
            };
            synced.map_err(|source| SubscriberError::Archive {
                path: self.dir.clone(),
                source,
            })?;
        }
        self.created = false;
        Ok(())
    }
}

/// Checks the header and cuts a torn last row; returns the last row's
/// offset and whether the header was (re)written.
async fn repair(
    file: &mut File,
    path: &Path,
    kind: Kind,
) -> Result<(Option<u64>, bool), SubscriberError> {
    let failed = |source| SubscriberError::Archive {
        path: path.to_owned(),
        source,
    };
    let header = csv_header(kind);
    let file_bytes = file.metadata().await.map_err(failed)?.len();
    let mut head = vec![0; header.len().min(file_bytes as usize)];
    file.seek(SeekFrom::Start(0)).await.map_err(failed)?;
    file.read_exact(&mut head).await.map_err(failed)?;
    match check_head(&head, file_bytes, &header) {
        Head::Header => {}
        Head::Torn => {
            file.set_len(0).await.map_err(failed)?;
            file.seek(SeekFrom::Start(0)).await.map_err(failed)?;
            file.write_all(header.as_bytes()).await.map_err(failed)?;
            return Ok((None, true));
        }
        Head::Other(found) => {
            return Err(SubscriberError::ArchiveHeader {
                path: path.to_owned(),
                found,
                expected: header.trim_end().to_owned(),
            });
        }
    }
    let rows_start = header.len() as u64;
    let (keep_bytes, last_offset) = last_row(file, rows_start, file_bytes, kind)
        .await
        .map_err(failed)?;
    if keep_bytes < file_bytes {
        tracing::warn!(path = %path.display(), cut_bytes = file_bytes - keep_bytes, "torn last row cut");
        file.set_len(keep_bytes).await.map_err(failed)?;
    }
    Ok((last_offset, false))
}

/// The length to keep and the last row's offset, reading the rows from
/// their end: a tail of [`TAIL_BYTES`], or all of them if it holds no
/// complete row.
async fn last_row(
    file: &mut File,
    rows_start: u64,
    file_bytes: u64,
    kind: Kind,
) -> std::io::Result<(u64, Option<u64>)> {
    let fields = csv_field_count(kind);
    let mut tail_start = file_bytes.saturating_sub(TAIL_BYTES).max(rows_start);
    loop {
        let mut tail = Vec::with_capacity((file_bytes - tail_start) as usize);
        file.seek(SeekFrom::Start(tail_start)).await?;
        file.read_to_end(&mut tail).await?;
        let whole = tail_start == rows_start;
        if let Some(rows) = recover_rows(&tail, whole, fields) {
            return Ok((tail_start + rows.keep_bytes as u64, rows.last_offset));
        }
        assert!(!whole, "a whole rows region always recovers");
        tail_start = rows_start;
    }
}
