//! The `log-start-offset` file: where the log starts after `purge_before`,
//! retention or `reset`, and the term to report when no batch is left.
//! Written atomically (temp file, fsync, rename), so it is either the old or
//! the new value, never torn.
//!
//! ```text
//!  0                8                16         20
//!  +----------------+----------------+----------+
//!  |start_offset u64|floor_term u64  |crc32c u32|  CRC over bytes [0, 16)
//!  +----------------+----------------+----------+
//! ```

use citystream_record::crc32c;

use crate::LogError;
use crate::segment::io_error;
use crate::storage::Storage;

pub(crate) const LOG_START_FILE: &str = "log-start-offset";
const LOG_START_LEN: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct LogStart {
    /// First offset served (the log may hold older bytes in its first segment).
    pub start_offset: u64,
    /// Term of the last record below the start offset (as Raft's snapshot
    /// term); reported by `last_term` when the log holds no batch.
    pub floor_term: u64,
}

impl LogStart {
    fn encode(&self) -> [u8; LOG_START_LEN] {
        let mut out = [0u8; LOG_START_LEN];
        out[0..8].copy_from_slice(&self.start_offset.to_le_bytes());
        out[8..16].copy_from_slice(&self.floor_term.to_le_bytes());
        let crc = crc32c(&out[0..16]);
        out[16..20].copy_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<LogStart> {
        if bytes.len() != LOG_START_LEN {
            return None;
        }
        let crc = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
        if crc != crc32c(&bytes[0..16]) {
            return None;
        }
        Some(LogStart {
            start_offset: u64::from_le_bytes(bytes[0..8].try_into().expect("8 bytes")),
            floor_term: u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")),
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

    /// The file round-trips and a flipped byte anywhere is refused.
    #[test]
    fn round_trip_and_crc() {
        let value = LogStart {
            start_offset: 42,
            floor_term: 7,
        };
        let bytes = value.encode();
        assert_eq!(LogStart::decode(&bytes), Some(value));
        for i in 0..LOG_START_LEN {
            let mut bad = bytes;
            bad[i] ^= 1;
            assert_eq!(LogStart::decode(&bad), None, "byte {i}");
        }
        assert_eq!(LogStart::decode(&bytes[..19]), None);
    }
}
