//! The `log-start-offset` file: where the log starts after `purge_before`,
//! retention, `reset` or a restore, the term and Raft index to report when
//! no batch is left, and the clean point of log compaction (decision 0017
//! §6). Written atomically (temp file, fsync, rename), so it is either the
//! old or the new value, never torn.
//!
//! Version 2 (44 bytes, written since compaction part 2):
//!
//! ```text
//!  0            8            16           24             32              40        44
//!  +------------+------------+------------+--------------+---------------+---------+
//!  |start_offset|floor_term  |floor_raft_ |clean_end_    |clean_reference|crc32c   |
//!  |u64         |u64         |index u64   |offset u64    |_ms i64        |u32      |
//!  +------------+------------+------------+--------------+---------------+---------+
//!  CRC over bytes [0, 40)
//! ```
//!
//! Version 1 (28 bytes: the first three fields, then the CRC over
//! `[0, 24)`) is still read: its clean end is the start offset and its
//! reference time unknown (`i64::MIN`). The clean point is only an
//! optimisation, so a stale one costs a pass more work, never a wrong
//! result.

use citystream_record::crc32c;

use crate::LogError;
use crate::segment::io_error;
use crate::storage::Storage;

pub(crate) const LOG_START_FILE: &str = "log-start-offset";
const LOG_START_LEN: usize = 44;
/// Bytes the CRC covers (everything before it).
const LOG_START_CRC_AT: usize = 40;
/// Length of a version 1 file, and where its CRC starts.
const LOG_START_V1_LEN: usize = 28;
const LOG_START_V1_CRC_AT: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogStart {
    /// First offset served (the log may hold older bytes in its first segment).
    pub start_offset: u64,
    /// Term of the last record below the start offset (as Raft's snapshot
    /// term); reported by `last_term` when the log holds no batch.
    pub floor_term: u64,
    /// Raft index of the batch holding the record below the start offset
    /// (Raft's snapshot index, 0 if none); reported by `last_raft_index`
    /// when the log holds no batch, and the next append gets it plus one.
    pub floor_raft_index: u64,
    /// The clean point: below this offset (a batch boundary) the log is
    /// compacted (`C_H` of decision 0017 §2 at `H = clean_end_offset`), so
    /// each key occurs at most once there. The next pass maps keys only
    /// from here on. May lag behind the start offset.
    pub clean_end_offset: u64,
    /// `ref(H)` of that pass: the largest physical milliseconds of the
    /// batches below the clean point (`i64::MIN`: unknown or none).
    pub clean_reference_ms: i64,
}

impl Default for LogStart {
    fn default() -> LogStart {
        LogStart {
            start_offset: 0,
            floor_term: 0,
            floor_raft_index: 0,
            clean_end_offset: 0,
            clean_reference_ms: i64::MIN,
        }
    }
}

impl LogStart {
    fn encode(&self) -> [u8; LOG_START_LEN] {
        let mut out = [0u8; LOG_START_LEN];
        out[0..8].copy_from_slice(&self.start_offset.to_le_bytes());
        out[8..16].copy_from_slice(&self.floor_term.to_le_bytes());
        out[16..24].copy_from_slice(&self.floor_raft_index.to_le_bytes());
        out[24..32].copy_from_slice(&self.clean_end_offset.to_le_bytes());
        out[32..40].copy_from_slice(&self.clean_reference_ms.to_le_bytes());
        let crc = crc32c(&out[..LOG_START_CRC_AT]);
        out[LOG_START_CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Either version; `None` for any other length or a bad CRC.
    fn decode(bytes: &[u8]) -> Option<LogStart> {
        let crc_at = match bytes.len() {
            LOG_START_LEN => LOG_START_CRC_AT,
            LOG_START_V1_LEN => LOG_START_V1_CRC_AT,
            _ => return None,
        };
        let (body, crc) = bytes.split_at(crc_at);
        if u32::from_le_bytes(crc.try_into().expect("4 bytes")) != crc32c(body) {
            return None;
        }
        let u64_at = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("8 bytes"));
        let start_offset = u64_at(0);
        let (clean_end_offset, clean_reference_ms) = if crc_at == LOG_START_CRC_AT {
            (u64_at(24), u64_at(32) as i64)
        } else {
            (start_offset, i64::MIN)
        };
        Some(LogStart {
            start_offset,
            floor_term: u64_at(8),
            floor_raft_index: u64_at(16),
            clean_end_offset,
            clean_reference_ms,
        })
    }

    /// The value to persist in a swap manifest (`compaction/swap.rs`).
    pub fn to_bytes(self) -> [u8; LOG_START_LEN] {
        self.encode()
    }

    /// A value read back from a swap manifest.
    pub fn from_bytes(bytes: &[u8]) -> Option<LogStart> {
        LogStart::decode(bytes)
    }
}

/// The stored log start, `None` if never written. A damaged file is an
/// error: guessing could serve purged records.
pub(crate) fn read(storage: &dyn Storage) -> Result<Option<LogStart>, LogError> {
    let path = storage.location(LOG_START_FILE);
    match storage
        .read_whole(LOG_START_FILE)
        .map_err(io_error(&path))?
    {
        None => Ok(None),
        Some(bytes) => LogStart::decode(&bytes)
            .map(Some)
            .ok_or_else(|| LogError::Corrupt(format!("{}: bad length or CRC", path.display()))),
    }
}

pub(crate) fn write(storage: &dyn Storage, log_start: LogStart) -> Result<(), LogError> {
    storage
        .write_atomic(LOG_START_FILE, &log_start.encode())
        .map_err(io_error(&storage.location(LOG_START_FILE)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value() -> LogStart {
        LogStart {
            start_offset: 42,
            floor_term: 7,
            floor_raft_index: 9,
            clean_end_offset: 50,
            clean_reference_ms: -3,
        }
    }

    /// The file has the documented bytes, round-trips, and a flipped byte
    /// anywhere or a wrong length is refused.
    #[test]
    fn round_trip_and_crc() {
        let bytes = value().encode();
        let mut expected = Vec::new();
        for field in [42u64, 7, 9, 50] {
            expected.extend_from_slice(&field.to_le_bytes());
        }
        expected.extend_from_slice(&(-3i64).to_le_bytes());
        expected.extend_from_slice(&crc32c(&expected).to_le_bytes());
        assert_eq!(bytes[..], expected[..]);
        assert_eq!(LogStart::decode(&bytes), Some(value()));
        for i in 0..LOG_START_LEN {
            let mut bad = bytes;
            bad[i] ^= 1;
            assert_eq!(LogStart::decode(&bad), None, "byte {i}");
        }
        for len in 0..LOG_START_LEN {
            assert_eq!(LogStart::decode(&bytes[..len]), None, "cut at {len}");
        }
    }

    /// A version 1 file (28 bytes) still reads, with the clean end at the
    /// start offset and no reference time; a damaged one is refused.
    #[test]
    fn version_1_files_decode() {
        let mut bytes = Vec::new();
        for field in [42u64, 7, 9] {
            bytes.extend_from_slice(&field.to_le_bytes());
        }
        bytes.extend_from_slice(&crc32c(&bytes).to_le_bytes());
        let expected = LogStart {
            clean_end_offset: 42,
            clean_reference_ms: i64::MIN,
            ..value()
        };
        assert_eq!(LogStart::decode(&bytes), Some(expected));
        for i in 0..LOG_START_V1_LEN {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert_eq!(LogStart::decode(&bad), None, "byte {i}");
        }
    }
}
