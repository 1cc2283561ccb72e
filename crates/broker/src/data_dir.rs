//! The broker's files outside the partition logs, and how they are written:
//!
//! ```text
//! DATA_DIR/
//!   producer-ids              reserved producer-id counter (JSON)
//!   topics/<name>/topic.json  partition count and settings (JSON)
//!   topics/<name>/<p>/        partition p's log (owned by citystream-log)
//!   deleting/<name>/          a topic being deleted (removed on open)
//! ```
//!
//! Every small file is replaced atomically (temp file, fsync, rename, fsync
//! of the directory), so a crash leaves the old or the new content, never a
//! mix. A topic is deleted by renaming its directory out of `topics/` first,
//! so a crash mid-delete never brings back half a topic.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{BrokerError, Cleanup, TopicSettings};

pub const TOPICS_DIR: &str = "topics";
pub const DELETING_DIR: &str = "deleting";
pub const TOPIC_METADATA_FILE: &str = "topic.json";
pub const PRODUCER_IDS_FILE: &str = "producer-ids";
/// Largest metadata file read back (they are a few hundred bytes).
const METADATA_BYTES_MAX: u64 = 64 * 1024;

/// What `topic.json` holds. Version 1 is a delete topic; version 2 adds
/// the compaction settings and is written only for a topic whose cleanup
/// includes `compact`, so a binary that knows only version 1 refuses the
/// topic instead of applying retention to it (decision 0017 §9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMetadata {
    pub version: u32,
    pub partitions: u32,
    pub retention_ms: Option<u64>,
    pub retention_bytes: Option<u64>,
    pub segment_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "is_delete")]
    pub cleanup: Cleanup,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compaction_lag_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tombstone_retention_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_roll_ms: Option<u64>,
}

fn is_delete(cleanup: &Cleanup) -> bool {
    *cleanup == Cleanup::Delete
}

impl TopicMetadata {
    /// The version of a delete topic's file.
    pub const VERSION: u32 = 1;
    /// The version of a compacted topic's file.
    pub const VERSION_COMPACTED: u32 = 2;
    /// The versions this build reads.
    pub const VERSIONS_READ: [u32; 2] = [Self::VERSION, Self::VERSION_COMPACTED];

    pub fn new(partitions: u32, settings: &TopicSettings) -> TopicMetadata {
        let version = match settings.cleanup.compacts() {
            true => Self::VERSION_COMPACTED,
            false => Self::VERSION,
        };
        TopicMetadata {
            version,
            partitions,
            retention_ms: settings.retention_ms,
            retention_bytes: settings.retention_bytes,
            segment_bytes: settings.segment_bytes,
            cleanup: settings.cleanup,
            compaction_lag_ms: settings.compaction_lag_ms,
            tombstone_retention_ms: settings.tombstone_retention_ms,
            segment_roll_ms: settings.segment_roll_ms,
        }
    }

    pub fn settings(&self) -> TopicSettings {
        TopicSettings {
            retention_ms: self.retention_ms,
            retention_bytes: self.retention_bytes,
            segment_bytes: self.segment_bytes,
            cleanup: self.cleanup,
            compaction_lag_ms: self.compaction_lag_ms,
            tombstone_retention_ms: self.tombstone_retention_ms,
            segment_roll_ms: self.segment_roll_ms,
        }
    }
}

/// An I/O failure on `path`, as a storage error.
pub fn io_error(path: &Path, source: std::io::Error) -> BrokerError {
    BrokerError::Storage(citystream_log::LogError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Replaces `path` with `bytes` atomically and durably.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), BrokerError> {
    let dir = path.parent().expect("a file path has a parent directory");
    let mut temp_name = path.file_name().expect("a file name").to_owned();
    temp_name.push(".tmp");
    let temp = dir.join(temp_name);
    let write = || -> std::io::Result<()> {
        let mut file = fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()
    };
    write().map_err(|e| io_error(&temp, e))?;
    fs::rename(&temp, path).map_err(|e| io_error(path, e))?;
    sync_dir(dir)
}

/// fsyncs a directory so a rename or creation inside it is durable.
pub fn sync_dir(dir: &Path) -> Result<(), BrokerError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, e))
}

/// Reads a small JSON file; `Ok(None)` if it does not exist.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, BrokerError> {
    let bytes = match fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path, e)),
        Ok(meta) if meta.len() > METADATA_BYTES_MAX => {
            return Err(corrupt(path, "file is too large"));
        }
        Ok(_) => fs::read(path).map_err(|e| io_error(path, e))?,
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| corrupt(path, &e.to_string()))
}

/// Writes `value` as JSON, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), BrokerError> {
    let bytes = serde_json::to_vec_pretty(value).expect("metadata serializes");
    write_atomically(path, &bytes)
}

/// Creates `dir` and its parents, and makes the new entry durable.
pub fn create_dir_durably(dir: &Path) -> Result<(), BrokerError> {
    fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    sync_dir(dir.parent().expect("a directory with a parent"))
}

/// Moves `dir` under `deleting_dir` (one atomic rename), then removes it.
pub fn remove_via_tombstone(dir: &Path, deleting_dir: &Path) -> Result<(), BrokerError> {
    let name = dir.file_name().expect("a directory name");
    let tombstone = deleting_dir.join(name);
    if tombstone.exists() {
        fs::remove_dir_all(&tombstone).map_err(|e| io_error(&tombstone, e))?;
    }
    fs::rename(dir, &tombstone).map_err(|e| io_error(dir, e))?;
    sync_dir(dir.parent().expect("a directory with a parent"))?;
    fs::remove_dir_all(&tombstone).map_err(|e| io_error(&tombstone, e))
}

/// Removes whatever a crash left in `deleting_dir`.
pub fn clear_tombstones(deleting_dir: &Path) -> Result<(), BrokerError> {
    for entry in list_dir(deleting_dir)? {
        tracing::info!(path = %entry.display(), "removing leftover of an interrupted delete");
        fs::remove_dir_all(&entry).map_err(|e| io_error(&entry, e))?;
    }
    Ok(())
}

/// The entries of a directory, sorted.
pub fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, BrokerError> {
    let entries = fs::read_dir(dir).map_err(|e| io_error(dir, e))?;
    let mut paths = Vec::new();
    for entry in entries {
        paths.push(entry.map_err(|e| io_error(dir, e))?.path());
    }
    paths.sort();
    Ok(paths)
}

fn corrupt(path: &Path, reason: &str) -> BrokerError {
    BrokerError::Storage(citystream_log::LogError::Corrupt(format!(
        "{}: {reason}",
        path.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An atomic write replaces the file and leaves no temp file behind.
    #[test]
    fn atomic_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        write_json(&path, &TopicMetadata::new(3, &TopicSettings::default())).unwrap();
        write_json(&path, &TopicMetadata::new(4, &TopicSettings::default())).unwrap();
        let back: TopicMetadata = read_json(&path).unwrap().unwrap();
        assert_eq!(back.partitions, 4);
        assert_eq!(list_dir(dir.path()).unwrap(), vec![path]);
    }

    /// A delete topic's file stays version 1 with only the old fields, so
    /// older binaries read it as before; a compacted topic's is version 2
    /// and reads back with every setting.
    #[test]
    fn topic_json_version_follows_the_cleanup() {
        let delete = TopicMetadata::new(2, &TopicSettings::default());
        let json = serde_json::to_string(&delete).unwrap();
        assert_eq!(
            json,
            r#"{"version":1,"partitions":2,"retention_ms":null,"retention_bytes":null,"segment_bytes":null}"#
        );
        let compacted = TopicSettings {
            cleanup: Cleanup::CompactDelete,
            retention_ms: Some(7),
            tombstone_retention_ms: Some(9),
            segment_roll_ms: Some(11),
            ..TopicSettings::default()
        };
        let meta = TopicMetadata::new(1, &compacted);
        assert_eq!(meta.version, TopicMetadata::VERSION_COMPACTED);
        let json = serde_json::to_string(&meta).unwrap();
        assert!(json.contains(r#""cleanup":"compact,delete""#), "{json}");
        let back: TopicMetadata = serde_json::from_str(&json).unwrap();
        assert_eq!(back.settings(), compacted);
    }

    /// A missing file reads as `None`; garbage reads as a corruption error.
    #[test]
    fn read_missing_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        assert!(read_json::<TopicMetadata>(&path).unwrap().is_none());
        fs::write(&path, b"{not json").unwrap();
        assert!(read_json::<TopicMetadata>(&path).is_err());
    }

    /// A tombstoned directory is gone, and so is its tombstone.
    #[test]
    fn remove_via_tombstone_removes() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("topics").join("t");
        let deleting = dir.path().join("deleting");
        fs::create_dir_all(victim.join("0")).unwrap();
        fs::create_dir_all(&deleting).unwrap();
        remove_via_tombstone(&victim, &deleting).unwrap();
        assert!(!victim.exists());
        assert!(list_dir(&deleting).unwrap().is_empty());
    }
}
