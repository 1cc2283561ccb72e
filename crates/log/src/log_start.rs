//! The `log-start-offset` file: where the log starts after `purge_before`,
//! retention or `reset`, and the term and Raft index to report when no
//! batch is left. Written atomically (temp file, fsync, rename), so it is
//! either the old or the new value, never torn.
//!
//! ```text
//!  0                8                16                 24         28
//!  +----------------+----------------+------------------+----------+
//!  |start_offset u64|floor_term u64  |floor_raft_index  |crc32c u32|  CRC over bytes [0, 24)
//!  |                |                |u64               |          |
//!  +----------------+----------------+------------------+----------+
//! ```

use citystream_record::crc32c;

use crate::LogError;
use crate::segment::io_error;
use crate::storage::Storage;

pub(crate) const LOG_START_FILE: &str = "log-start-offset";
const LOG_START_LEN: usize = 28;
/// Bytes the CRC covers (everything before it).
const LOG_START_CRC_AT: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
}

impl LogStart {
    fn encode(&self) -> [u8; LOG_START_LEN] {
        let mut out = [0u8; LOG_START_LEN];
        out[0..8].copy_from_slice(&self.start_offset.to_le_bytes());
        out[8..16].copy_from_slice(&self.floor_term.to_le_bytes());
        out[16..24].copy_from_slice(&self.floor_raft_index.to_le_bytes());
        let crc = crc32c(&out[..LOG_START_CRC_AT]);
        out[LOG_START_CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<LogStart> {
        if bytes.len() != LOG_START_LEN {
            return None;
        }
        let (body, crc) = bytes.split_at(LOG_START_CRC_AT);
        if u32::from_le_bytes(crc.try_into().expect("4 bytes")) != crc32c(body) {
            return None;
        }
        let u64_at = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("8 bytes"));
        Some(LogStart {
            start_offset: u64_at(0),
            floor_term: u64_at(8),
            floor_raft_index: u64_at(16),
        })
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

    /// The file has the documented bytes, round-trips, and a flipped byte
    /// anywhere or a wrong length is refused.
    #[test]
    fn round_trip_and_crc() {
        let value = LogStart {
            start_offset: 42,
            floor_term: 7,
            floor_raft_index: 9,
        };
        let bytes = value.encode();
        let mut expected = Vec::new();
        for field in [42u64, 7, 9] {
            expected.extend_from_slice(&field.to_le_bytes());
        }
        expected.extend_from_slice(&crc32c(&expected).to_le_bytes());
        assert_eq!(bytes[..], expected[..]);
        assert_eq!(LogStart::decode(&bytes), Some(value));
        for i in 0..LOG_START_LEN {
            let mut bad = bytes;
            bad[i] ^= 1;
            assert_eq!(LogStart::decode(&bad), None, "byte {i}");
        }
        assert_eq!(LogStart::decode(&bytes[..LOG_START_LEN - 1]), None);
        assert_eq!(LogStart::decode(&bytes[..20]), None);
    }
}
